import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InputError, UsageError } from '../errors.js'
import { mkfsExt4 } from '../tools/mkfs.js'
import {
  checkCacheDir,
  checkRoot,
  checkRootFloor,
  checkFileSizeLimit,
  checkFreeSpace,
  checkSpecFiles,
  ext4WrittenBytes,
  outputBytesEstimate,
  plannedRootFsBytes,
  prepareOutputDir,
} from './preflight.js'
import { parseSpec } from './spec.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-preflight-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function isError(cls: typeof InputError | typeof UsageError, code: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`)
    assert.equal((e as InputError).code, code)
    assert.equal((e as InputError).exitCode, 2)
    assert.match((e as Error).message, message)
    return true
  }
}

test('prepareOutputDir() makes a missing directory and its parents', () =>
  withDir(async (dir) => {
    await prepareOutputDir(join(dir, 'a', 'b'))
    assert.ok((await stat(join(dir, 'a', 'b'))).isDirectory())
  }))

test('prepareOutputDir() refuses an existing file, and a path through a file, as USAGE', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'f'), '')
    await assert.rejects(
      prepareOutputDir(join(dir, 'f')),
      isError(UsageError, 'USAGE', /it is a file, not a directory/),
    )
    await assert.rejects(
      prepareOutputDir(join(dir, 'f', 'out')),
      isError(UsageError, 'USAGE', /a part of the path is a file/),
    )
  }))

test('checkSpecFiles() names the field of a files[].source that does not exist, relative to the spec', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'motd'), 'hi\n')
    const spec = parseSpec('files: [{path: /etc/motd, source: motd}, {path: /etc/x, source: ./missing.txt}]\n')
    await assert.rejects(
      checkSpecFiles(spec, dir, 'spec "s.yaml"'),
      isError(
        InputError,
        'NOT_FOUND',
        /^Invalid spec "s.yaml": field "files\[1\].source": ".\/missing.txt" does not exist/,
      ),
    )
    await checkSpecFiles(parseSpec('files: [{path: /etc/motd, source: motd}]\n'), dir)
  }))

test('checkSpecFiles() refuses a files[].source that is a directory', () =>
  withDir(async (dir) => {
    await mkdir(join(dir, 'tree'))
    await assert.rejects(
      checkSpecFiles(parseSpec('files: [{path: /etc/x, source: tree}]\n'), dir),
      isError(InputError, 'SPEC_INVALID', /field "files\[0\].source": .* is not a regular file/),
    )
  }))

test('checkCacheDir() refuses a cache that is a file, and accepts one still to be made', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'f'), '')
    await assert.rejects(
      checkCacheDir({ cache: join(dir, 'f') }),
      isError(InputError, 'SPEC_INVALID', /field "cache": .* is not a directory/),
    )
    await assert.rejects(
      checkCacheDir({ cache: join(dir, 'f', 'apt') }),
      isError(InputError, 'SPEC_INVALID', /field "cache": cannot use .*: a part of the path is a file/),
    )
    await checkCacheDir({ cache: join(dir, 'new', 'apt') })
    assert.ok((await stat(join(dir, 'new', 'apt'))).isDirectory())
    await checkCacheDir({ cache: null })
  }))

test('checkRoot() refuses a user other than root as USAGE, before anything starts', () => {
  assert.throws(() => checkRoot(1000), isError(UsageError, 'USAGE', /needs root/))
  checkRoot(0)
})

// What mkfs.ext4 really allocates in a sparse image file (the flags the build uses), against the estimate.
for (const size of [1 * GiB, 6 * GiB]) {
  test(`ext4WrittenBytes() is a close lower bound of what mkfs.ext4 writes for ${size / GiB} GiB`, () =>
    withDir(async (dir) => {
      const image = join(dir, 'fs.img')
      const fh = await open(image, 'w')
      await fh.truncate(size)
      await fh.close()
      await mkfsExt4({
        image,
        offsetBytes: 0,
        sizeBytes: size,
        uuid: '0b1e0f4e-6f0a-4d5c-9a55-1f0e2d3c4b5a',
        label: 'root',
      })
      const written = (await stat(image)).blocks * 512
      const estimate = ext4WrittenBytes(size)
      assert.ok(estimate <= written, `estimate ${estimate} ≤ written ${written}`)
      assert.ok(estimate >= written * 0.9, `estimate ${estimate} within 10% of written ${written}`)
    }))
}

test('plannedRootFsBytes() follows root_size, then size minus the boot partitions, then a floor for "fit"', () => {
  assert.equal(plannedRootFsBytes(parseSpec('root_size: 1G\n')), GiB)
  assert.equal(plannedRootFsBytes(parseSpec('size: 2G\n')), 2 * GiB - 106 * MiB)
  assert.ok(plannedRootFsBytes(parseSpec('size: fit\n')) >= 448 * MiB)
})

test('checkRootFloor() refuses a size or root_size no root tree fits in (they used to fail after mmdebstrap)', () => {
  assert.throws(
    () => checkRootFloor(parseSpec('size: 512M\n')),
    isError(InputError, 'SPEC_INVALID', /field "size": 512 MiB leaves 406 MiB for root, too small: .* needs 704 MiB/),
  )
  assert.throws(
    () => checkRootFloor(parseSpec('root_size: 600M\n')),
    isError(InputError, 'SPEC_INVALID', /field "root_size": 600 MiB is too small/),
  )
  checkRootFloor(parseSpec('size: 810M\n'))
  checkRootFloor(parseSpec('size: fit\nroot_size: 704M\n'))
  checkRootFloor(parseSpec('size: 2G\n'))
})

test('checkFreeSpace() adds up what goes to one file system and names the sizes', () =>
  withDir(async (dir) => {
    const needs = [
      { dir, bytes: 600 * MiB, what: 'image and .zst' },
      { dir: join(dir, 'work', 'not-made-yet'), bytes: 500 * MiB, what: 'root tree' },
    ]
    await checkFreeSpace(needs, { free: async () => 1200 * MiB })
    await assert.rejects(
      checkFreeSpace(needs, { free: async () => 1000 * MiB }),
      isError(
        InputError,
        'TARGET_TOO_SMALL',
        /has 1000 MiB free, the build writes at least 1100 MiB there \(image and .zst: 600 MiB; root tree: 500 MiB\)/,
      ),
    )
  }))

test('outputBytesEstimate() of a 1 TiB image is more than 16 GiB (its inode tables alone)', () => {
  assert.ok(outputBytesEstimate(1024 * GiB - 106 * MiB, 448 * MiB) > 16 * GiB)
})

test('checkFileSizeLimit() refuses an image larger than the output file system\'s largest file, naming "size"', async (t) => {
  await withDir(async (dir) => {
    // ext4 with 4 KiB blocks holds files below 16 TiB (2^32 blocks), whatever its own size.
    const img = join(dir, 'ext4.img')
    const mnt = join(dir, 'mnt')
    await mkdir(mnt)
    const fh = await open(img, 'w')
    await fh.truncate(32 * MiB)
    await fh.close()
    execFileSync('mkfs.ext4', ['-q', '-b', '4096', img], { stdio: 'ignore' })
    try {
      execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'ignore' })
    } catch {
      t.skip('cannot loop-mount an ext4 image here')
      return
    }
    try {
      await checkFileSizeLimit(mnt, 1024 * GiB)
      await assert.rejects(
        checkFileSizeLimit(mnt, 17 * 1024 * GiB),
        isError(InputError, 'SPEC_INVALID', /field "size": the file system of .* cannot hold a file of 17 TiB/),
      )
    } finally {
      execFileSync('umount', [mnt])
    }
  })
})
