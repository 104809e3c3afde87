import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { HwimageError } from '../../errors.js'
import type { CommandContext } from '../command.js'
import { buildCommand } from './build.js'

// Each of these mistakes used to surface minutes into a build (after mmdebstrap), or
// as error[INTERNAL] exit 1. Now each ends the build before the root tree is started.

function context(): { ctx: CommandContext; err: () => string } {
  let err = ''
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  stderr.on('data', (c) => (err += c))
  return { ctx: { stdout, stderr, signal: new AbortController().signal }, err: () => err }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-build-cli-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Runs `hwimage build ARGV` and expects it to fail with `code`, exit 2, before mmdebstrap. */
async function failsEarly(argv: string[], code: string, message: RegExp): Promise<void> {
  const { ctx, err } = context()
  await assert.rejects(buildCommand.run(argv, ctx), (e: unknown) => {
    assert.ok(e instanceof HwimageError, `expected a HwimageError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    assert.equal(e.exitCode, 2)
    assert.match(e.message, message)
    return true
  })
  assert.doesNotMatch(err(), /root tree \(mmdebstrap\)/, 'the root tree was never started')
}

test('hwimage build refuses size: 100T at once (SPEC_INVALID, exit 2)', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), 'size: 100T\n')
    await failsEarly(
      [join(dir, 's.yaml'), '-o', join(dir, 'out')],
      'SPEC_INVALID',
      /field "size": 100 TiB is larger than the 1 TiB maximum/,
    )
  }))

test('hwimage build refuses a root_size larger than size at once (SPEC_INVALID, exit 2)', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), 'size: 2G\nroot_size: 3G\n')
    await failsEarly([join(dir, 's.yaml'), '-o', join(dir, 'out')], 'SPEC_INVALID', /field "root_size": 3 GiB/)
  }))

test('hwimage build -o naming an existing file is USAGE, exit 2', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'afile'), '')
    await failsEarly(['-o', join(dir, 'afile')], 'USAGE', /Cannot build into ".*afile": it is a file, not a directory/)
  }))

test('hwimage build with a files[].source that does not exist is NOT_FOUND naming the field, exit 2', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), 'files: [{path: /etc/x, source: ./missing.txt}]\n')
    await failsEarly(
      [join(dir, 's.yaml'), '-o', join(dir, 'out')],
      'NOT_FOUND',
      /field "files\[0\].source": ".\/missing.txt" does not exist/,
    )
  }))

test('hwimage build with a cache path through a file is SPEC_INVALID naming "cache", exit 2', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'afile'), '')
    await writeFile(join(dir, 's.yaml'), `cache: ${join(dir, 'afile', 'apt')}\n`)
    await failsEarly([join(dir, 's.yaml'), '-o', join(dir, 'out')], 'SPEC_INVALID', /field "cache": cannot use/)
  }))

test('hwimage build with two files where one path is a directory of the other is SPEC_INVALID naming the field', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), 'files: [{path: /etc/motd, content: a}, {path: /etc/motd/x, content: b}]\n')
    await failsEarly(
      [join(dir, 's.yaml'), '-o', join(dir, 'out')],
      'SPEC_INVALID',
      /field "files\[1\].path": "\/etc\/motd\/x" clashes with another file/,
    )
  }))

test('hwimage build with a directory for its spec is USAGE, exit 2', () =>
  withDir(async (dir) => {
    await failsEarly([dir, '-o', join(dir, 'out')], 'USAGE', /it is a directory/)
  }))

test('hwimage build into a file system too small for the image is TARGET_TOO_SMALL before mmdebstrap', async (t) => {
  await withDir(async (dir) => {
    const mnt = join(dir, 'small')
    await mkdir(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt], { stdio: 'ignore' })
    } catch {
      t.skip('cannot mount a tmpfs here')
      return
    }
    try {
      await failsEarly(
        ['-o', join(mnt, 'out')],
        'TARGET_TOO_SMALL',
        /has 64 MiB free, the build writes at least .* there \(image and .zst/,
      )
    } finally {
      execFileSync('umount', [mnt])
    }
  })
})

// The one test that fetches Debian's kernel package (apt-get download from the host's
// sources, then unpacked and indexed once into /var/cache/hwimage/kernels): about 50 s
// the first time on the development machine, 8 s once the package is in the cache.
test(
  'hwimage build with an unknown module in kernel.modules.add is MODULE_UNKNOWN before mmdebstrap (real kernel package)',
  { timeout: 600_000 },
  () =>
    withDir(async (dir) => {
      await writeFile(join(dir, 's.yaml'), 'kernel: { modules: { add: [sctp, no_such_mod] } }\n')
      await failsEarly(
        [join(dir, 's.yaml'), '-o', join(dir, 'out')],
        'MODULE_UNKNOWN',
        /field "kernel.modules.add\[1\]": kernel 6\.1\.\S+ has no module "no_such_mod"/,
      )
    }),
)
