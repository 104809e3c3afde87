import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { HwimageError, InputError, UsageError } from '../../errors.js'
import { decodeIronicConfigDrive } from '../../seed/ironic.js'
import type { CommandContext } from '../command.js'
import { seedCommand } from './seed.js'

function context(): { ctx: CommandContext; out: () => string; err: () => string } {
  let out = ''
  let err = ''
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  stdout.on('data', (c) => (out += c))
  stderr.on('data', (c) => (err += c))
  return { ctx: { stdout, stderr, signal: new AbortController().signal }, out: () => out, err: () => err }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-seed-cli-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const SEED =
  'hostname: metal-01\ninstance_id: iid-cli\nnetwork:\n  ethernets: [{mac: "52:54:00:12:34:56", dhcp4: true}]\n'

test('hwimage seed writes a NoCloud FAT volume and prints one JSON document with --json', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    const { ctx, out } = context()
    const code = await seedCommand.run(
      [join(dir, 's.yaml'), '-o', join(dir, 'seed.img'), '--sector-size', '4096', '--json'],
      ctx,
    )
    assert.equal(code, 0)
    const result = JSON.parse(out())
    assert.equal(result.format, 'nocloud')
    assert.equal(result.fs, 'vfat')
    assert.equal(result.label, 'CIDATA')
    assert.equal(result.sectorSize, 4096)
    assert.equal(result.instanceId, 'iid-cli')
    assert.equal(result.networkConfig.version, 1)
    assert.equal((await stat(join(dir, 'seed.img'))).size, 16 * 1024 * 1024)
    assert.equal((await stat(join(dir, 'seed.img'))).mode & 0o777, 0o600)
    assert.match(
      execFileSync('blkid', ['-o', 'export', join(dir, 'seed.img')], { encoding: 'utf8' }),
      /^LABEL=CIDATA$/m,
    )
  }))

test('hwimage seed --ironic writes base64 of a gzipped config-2 ISO', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    const { ctx, out } = context()
    assert.equal(await seedCommand.run([join(dir, 's.yaml'), '--ironic', '-o', join(dir, 'cd.b64')], ctx), 0)
    assert.match(out(), /Ironic config drive/)
    const iso = decodeIronicConfigDrive(await readFile(join(dir, 'cd.b64'), 'utf8'))
    assert.equal(new TextDecoder().decode(iso.subarray(16 * 2048 + 40, 16 * 2048 + 48)), 'config-2')
  }))

test('hwimage seed --ironic -o - prints the encoded drive on stdout', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    const { ctx, out } = context()
    assert.equal(await seedCommand.run([join(dir, 's.yaml'), '--ironic', '-o', '-'], ctx), 0)
    assert.ok(decodeIronicConfigDrive(out()).length > 32768)
  }))

test('hwimage seed reports a bad seed as InputError naming the field (exit 2)', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'bad.yaml'), 'network:\n  ethernets: [{mac: "52:54:00:12:34"}]\n')
    const { ctx } = context()
    await assert.rejects(
      seedCommand.run([join(dir, 'bad.yaml'), '-o', join(dir, 'x.img')], ctx),
      (e: unknown) => e instanceof InputError && e.exitCode === 2 && /network\.ethernets\[0\]\.mac/.test(e.message),
    )
    await assert.rejects(
      seedCommand.run([join(dir, 'missing.yaml'), '-o', join(dir, 'x.img')], ctx),
      (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND',
    )
  }))

test('hwimage seed refuses contradictory or unknown options as usage errors', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    const { ctx } = context()
    const s = join(dir, 's.yaml')
    for (const argv of [
      [s],
      [s, '-o', join(dir, 'x'), '--ironic', '--format', 'nocloud'],
      [s, '-o', join(dir, 'x'), '--sector-size', '1024'],
      [s, '-o', join(dir, 'x'), '--fs', 'ext4'],
      [s, '-o', '-'],
      [s, '-o', dir],
    ]) {
      await assert.rejects(seedCommand.run(argv, ctx), (e: unknown) => e instanceof UsageError, argv.join(' '))
    }
  }))

/** Expects `hwimage seed ARGV` to fail with `code` and exit 2. */
async function failsWith(argv: string[], code: string, message: RegExp): Promise<void> {
  const { ctx } = context()
  await assert.rejects(seedCommand.run(argv, ctx), (e: unknown) => {
    assert.ok(e instanceof HwimageError, `expected a HwimageError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    assert.equal(e.exitCode, 2)
    assert.match(e.message, message)
    return true
  })
}

test('hwimage seed -o into a directory that does not exist is NOT_FOUND, exit 2', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    await failsWith(
      [join(dir, 's.yaml'), '-o', '/nonexistent-dir/x'],
      'NOT_FOUND',
      /Cannot write seed to "\/nonexistent-dir\/x": directory "\/nonexistent-dir" does not exist/,
    )
    await failsWith([join(dir, 's.yaml'), '--ironic', '-o', '/nonexistent-dir/x'], 'NOT_FOUND', /does not exist/)
  }))

test('hwimage seed --image naming a missing file is NOT_FOUND, a directory USAGE (exit 2, nothing written)', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    await failsWith(
      [join(dir, 's.yaml'), '--image', '/nonexistent', '-o', join(dir, 'seed.img')],
      'NOT_FOUND',
      /Cannot read image "\/nonexistent": no such file/,
    )
    await failsWith([join(dir, 's.yaml'), '--image', dir, '-o', join(dir, 'seed.img')], 'USAGE', /it is a directory/)
    await assert.rejects(stat(join(dir, 'seed.img')), { code: 'ENOENT' })
  }))

test('hwimage seed --size above the 256M maximum is USAGE at once, naming the maximum', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    await failsWith(
      [join(dir, 's.yaml'), '--size', '1T', '-o', join(dir, 'seed.img')],
      'USAGE',
      /Cannot use --size 1T: a seed volume is at most 256M/,
    )
    await failsWith([join(dir, 's.yaml'), '--size', '257M', '-o', join(dir, 'seed.img')], 'USAGE', /at most 256M/)
    await assert.rejects(stat(join(dir, 'seed.img')), { code: 'ENOENT' })
  }))

test('hwimage seed into a file system without room for the volume is TARGET_TOO_SMALL before writing', async (t) => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 's.yaml'), SEED)
    const mnt = join(dir, 'small')
    await mkdir(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'ignore' })
    } catch {
      t.skip('cannot mount a tmpfs here')
      return
    }
    try {
      await failsWith(
        [join(dir, 's.yaml'), '-o', join(mnt, 'seed.img')],
        'TARGET_TOO_SMALL',
        /has 8\.0 MiB free, the volume is 16\.0 MiB/,
      )
      await assert.rejects(stat(join(mnt, 'seed.img')), { code: 'ENOENT' })
      const { ctx } = context()
      assert.equal(await seedCommand.run([join(dir, 's.yaml'), '--size', '4M', '-o', join(mnt, 'seed.img')], ctx), 0)
    } finally {
      execFileSync('umount', [mnt])
    }
  })
})

test('hwimage seed with a directory for its seed file is USAGE', () =>
  withDir(async (dir) => {
    await failsWith([dir, '-o', join(dir, 'seed.img')], 'USAGE', /Cannot read seed ".*": it is a directory/)
  }))
