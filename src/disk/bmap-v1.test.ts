// bmap files of versions 1.2–1.4, as older bmap-tools wrote them (Yocto, Tizen): made here by
// oldBmapXml() (bmap-v1-fixture.ts), laid out after the files bmap-tools keeps as test data, and cross-checked
// with Debian's `bmaptool copy`.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bmapRangeBytes, decodeBmap, type BmapChecksumType } from './bmap.js'
import { oldBmapXml } from './bmap-v1.fixture.js'
import { FormatError } from '../errors.js'
import { run } from '../tools/run.js'

const isBmapError = (e: unknown): boolean => e instanceof FormatError && e.code === 'FORMAT_BMAP'
const rejects = (input: string, re: RegExp): void => {
  assert.throws(
    () => decodeBmap(input),
    (e: unknown) => isBmapError(e) && re.test((e as Error).message),
  )
}
const digest = (algorithm: BmapChecksumType, b: Uint8Array | string): string =>
  createHash(algorithm).update(b).digest('hex')

/** A 40-block image (the last block short) with different data in every block. */
function sampleImage(): Uint8Array {
  const image = new Uint8Array(39 * 4096 + 1000)
  let seed = 7
  for (let i = 0; i < image.length; i++) image[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24
  return image
}
const image = sampleImage()
const RANGES = [
  { first: 0, last: 1 },
  { first: 5, last: 5 },
  { first: 9, last: 20 },
  { first: 39, last: 39 },
]

test('decodeBmap() reads a 1.2 file: SHA-1 range digests, no file checksum, MappedBlocksCount after the BlockMap', () => {
  const b = decodeBmap(oldBmapXml({ version: '1.2', image, blockSize: 4096, ranges: RANGES }))
  assert.equal(b.version, '1.2')
  assert.equal(b.fileChecksum, undefined)
  assert.equal(b.mappedBlocks, 16)
  assert.deepEqual(
    b.ranges.map((r) => [r.first, r.last]),
    [
      [0, 1],
      [5, 5],
      [9, 20],
      [39, 39],
    ],
  )
  for (const r of b.ranges) {
    const { offset, length } = bmapRangeBytes(b, r)
    assert.deepEqual(r.checksum, { algorithm: 'sha1', digest: digest('sha1', image.subarray(offset, offset + length)) })
  }
})

test('decodeBmap() reads a 1.3 file and checks its BmapFileSHA1', () => {
  const xml = oldBmapXml({ version: '1.3', image, blockSize: 4096, ranges: RANGES })
  const b = decodeBmap(xml)
  assert.equal(b.fileChecksum, 'sha1')
  assert.ok(b.ranges.every((r) => r.checksum?.algorithm === 'sha1' && r.checksum.digest.length === 40))
  // One changed character anywhere breaks the file checksum.
  rejects(xml.replace('<BlockSize> 4096', '<BlockSize>  4096'), /expected file checksum [0-9a-f]{40}, got [0-9a-f]{40}/)
  rejects(
    xml.replace(/<BmapFileSHA1> [0-9a-f]{40}/, '<BmapFileSHA1> 1234'),
    /expected 40 lowercase hex digits \(sha1\) in <BmapFileSHA1>, got "1234"/,
  )
  rejects(xml.replace(/\s*<BmapFileSHA1>.*<\/BmapFileSHA1>/, ''), /expected one <BmapFileSHA1> in <bmap>, got 0/)
})

test('decodeBmap() reads a 1.4 file with ChecksumType sha256 or sha1, like 2.0', () => {
  for (const checksumType of ['sha256', 'sha1'] as const) {
    const b = decodeBmap(oldBmapXml({ version: '1.4', image, blockSize: 4096, ranges: RANGES, checksumType }))
    assert.equal(b.version, '1.4')
    assert.equal(b.fileChecksum, checksumType)
    const r = b.ranges[2]!
    const { offset, length } = bmapRangeBytes(b, r)
    assert.deepEqual(r.checksum, {
      algorithm: checksumType,
      digest: digest(checksumType, image.subarray(offset, offset + length)),
    })
  }
  const xml = oldBmapXml({ version: '1.4', image, blockSize: 4096, ranges: RANGES })
  rejects(xml.replace(/\s*<ChecksumType>.*<\/ChecksumType>/, ''), /expected one <ChecksumType> in <bmap>, got 0/)
})

test('decodeBmap() lets a 1.x range go without a digest (it is written unverified), not a 2.0 one', () => {
  const ranges = [
    { first: 0, last: 1 },
    { first: 5, last: 5, digest: false },
    { first: 9, last: 20 },
  ]
  for (const version of ['1.2', '1.3', '1.4'] as const) {
    const b = decodeBmap(oldBmapXml({ version, image, blockSize: 4096, ranges }))
    assert.deepEqual(
      b.ranges.map((r) => r.checksum !== undefined),
      [true, false, true],
      version,
    )
  }
  const v20 = oldBmapXml({ version: '1.4', image, blockSize: 4096, ranges }).replace('version="1.4"', 'version="2.0"')
  const fixed = v20.replace(/(<BmapFileChecksum> )[0-9a-f]{64}/, `$1${'0'.repeat(64)}`)
  rejects(fixed.replace('0'.repeat(64), digest('sha256', fixed)), /expected a chksum attribute on range "5"/)
})

test('decodeBmap() reads the digests under the attribute name of the version: sha1= before 1.4, chksum= from 1.4', () => {
  // A 1.3 file's ranges named chksum= are not its digests (bmaptool ignores them too).
  const xml = oldBmapXml({ version: '1.2', image, blockSize: 4096, ranges: RANGES }).replaceAll(' sha1="', ' chksum="')
  assert.ok(decodeBmap(xml).ranges.every((r) => r.checksum === undefined))
  rejects(
    oldBmapXml({ version: '1.2', image, blockSize: 4096, ranges: RANGES }).replace(/sha1="[0-9a-f]{40}"/, 'sha1="abc"'),
    /expected 40 lowercase hex digits as the sha1 of range 0-1, got "abc"/,
  )
})

// ---- bmaptool copy (Debian bmap-tools) on the same files ----

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-bmap-v1-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('bmaptool copy accepts the 1.2, 1.3 and 1.4 files we read, and copies the same ranges', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await writeFile(img, image)
    for (const version of ['1.2', '1.3', '1.4'] as const) {
      const xml = oldBmapXml({
        version,
        image,
        blockSize: 4096,
        ranges: [...RANGES.slice(0, 2), { ...RANGES[2]!, digest: false }, RANGES[3]!],
      })
      const b = decodeBmap(xml)
      await writeFile(join(dir, 'old.bmap'), xml)
      const dest = join(dir, `copy-${version}.img`)
      await run(['bmaptool', 'copy', '--bmap', join(dir, 'old.bmap'), img, dest])
      const copy = await readFile(dest)
      for (let block = 0; block < 40; block++) {
        const mapped = b.ranges.some((r) => r.first <= block && block <= r.last)
        const at = block * 4096
        const want = mapped ? image.subarray(at, at + 4096) : new Uint8Array(Math.min(4096, image.length - at))
        assert.deepEqual(new Uint8Array(copy.subarray(at, at + 4096)), want, `${version} block ${block}`)
      }
    }
  })
})

test('bmaptool copy, like decodeBmap(), refuses a 1.3 file whose BmapFileSHA1 is wrong, and checks its SHA-1 ranges', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'disk.img')
    await writeFile(img, image)
    const good = oldBmapXml({ version: '1.3', image, blockSize: 4096, ranges: RANGES })
    const tampered = good.replace('<BlocksCount> 40', '<BlocksCount>  40')
    await writeFile(join(dir, 'bad.bmap'), tampered)
    const r = await run(['bmaptool', 'copy', '--bmap', join(dir, 'bad.bmap'), img, join(dir, 'copy.img')], {
      okStatus: [0, 1],
    })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /checksum mismatch for bmap file/)
    rejects(tampered, /expected file checksum/)
    // A changed image byte inside a range: bmaptool's SHA-1 check fails (ours is in write-image.test.ts).
    const changed = new Uint8Array(image)
    changed[5 * 4096 + 3]! ^= 1
    await writeFile(img, changed)
    await writeFile(join(dir, 'good.bmap'), good)
    const c = await run(['bmaptool', 'copy', '--bmap', join(dir, 'good.bmap'), img, join(dir, 'copy.img')], {
      okStatus: [0, 1],
    })
    assert.equal(c.status, 1)
    assert.match(c.stderr, /checksum mismatch/)
  })
})

test('decodeBmap() refuses a version number changed to an older one, which would skip the checksums', () => {
  // "2.0" → "1.0" is one byte; so is "1.3" → "1.2". Both files keep the elements of their real version.
  const v14 = oldBmapXml({ version: '1.4', image, blockSize: 4096, ranges: RANGES })
  rejects(v14.replace('version="1.4"', 'version="1.0"'), /expected no <ChecksumType> in a version 1\.0 bmap/)
  rejects(v14.replace('version="1.4"', 'version="1.3"'), /expected no <ChecksumType> in a version 1\.3 bmap/)
  const v13 = oldBmapXml({ version: '1.3', image, blockSize: 4096, ranges: RANGES })
  rejects(v13.replace('version="1.3"', 'version="1.2"'), /expected no <BmapFileSHA1> in a version 1\.2 bmap/)
})
