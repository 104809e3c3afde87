// install() end to end with the formats other tools write: a qcow2 with zstd clusters (and
// with extended L2 entries), and bmap files of formats 1.2–1.4 with SHA-1 or no range digests.

import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { decodeBmap } from '../disk/bmap.js'
import { oldBmapXml, type OldBmap } from '../disk/bmap-v1.fixture.js'
import { HwimageError } from '../errors.js'
import { run } from '../tools/run.js'
import { garbageFile, makeFixtureImage, type FixtureImage } from './image.fixture.js'
import { install } from './install.js'
import { assertInstalled, readBytes } from './install.fixture.js'

const MiB = 1 << 20
const DISK = 64 * MiB
let dir: string
let fx: FixtureImage
let image: Uint8Array
let n = 0

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-install-formats-'))
  fx = await makeFixtureImage(dir, { formats: [] })
  image = new Uint8Array(await fsp.readFile(fx.img))
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

async function target(): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await garbageFile(file, DISK, n)
  return file
}

const code = (c: string) => (e: unknown) => e instanceof HwimageError && e.code === c

/** The image's partitions landed byte for byte (the tables differ: the installer grows them to the disk). Not for bmap installs: they leave unmapped blocks as they were. */
async function assertPartitionsEqual(disk: string): Promise<void> {
  for (const part of [fx.biosBoot, fx.esp, fx.root]) {
    const got = await readBytes(disk, part.offset, part.length)
    assert.ok(
      got.equals(image.subarray(part.offset, part.offset + part.length)),
      `bytes ${part.offset}–${part.offset + part.length - 1}`,
    )
  }
}

for (const [name, opts] of [
  ['zstd.qcow2', 'compression_type=zstd'],
  ['zstd-extended.qcow2', 'compression_type=zstd,extended_l2=on,cluster_size=64k'],
] as const) {
  test(`install() writes a qcow2 with zstd clusters (${opts}) onto a file: the image qemu-img reads`, async () => {
    const q = path.join(dir, name)
    await run(['qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', opts, fx.img, q])
    // What qemu-img reads from it is the raw image, so matching the raw image matches qemu.
    await run(['qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', fx.img, q])
    const disk = await target()
    const r = await install({ source: q, disk, bmap: false })
    assert.equal(r.source.format, 'qcow2')
    assert.equal(r.bytes.image, fx.size)
    await assertInstalled(disk, fx, DISK, dir)
    await assertPartitionsEqual(disk)
  })
}

/** The fixture's bmap (2.0) rewritten in an older format. */
/** Every mapped block past the first MiB landed byte for byte (the first MiB holds the table, grown to the disk). */
async function assertMappedEqual(disk: string): Promise<void> {
  const b = decodeBmap(await fsp.readFile(fx.bmap))
  for (const r of b.ranges) {
    const from = Math.max(MiB, r.first * b.blockSize)
    const to = Math.min(image.length, (r.last + 1) * b.blockSize)
    if (to <= from) continue
    assert.ok((await readBytes(disk, from, to - from)).equals(image.subarray(from, to)), `blocks ${r.first}–${r.last}`)
  }
}

async function oldBmapFile(
  version: OldBmap['version'],
  name: string,
  without: (i: number) => boolean = () => false,
): Promise<{ file: string; ranges: number; withDigest: number }> {
  const b = decodeBmap(await fsp.readFile(fx.bmap))
  const ranges = b.ranges.map((r, i) => ({ first: r.first, last: r.last, ...(without(i) ? { digest: false } : {}) }))
  const file = path.join(dir, name)
  await fsp.writeFile(file, oldBmapXml({ version, image, blockSize: b.blockSize, ranges }))
  return { file, ranges: ranges.length, withDigest: ranges.filter((r) => !('digest' in r)).length }
}

test("install() with a bmap of format 1.3 checks every range's SHA-1 and the file's BmapFileSHA1", async () => {
  const { file, ranges } = await oldBmapFile('1.3', 'v13.bmap')
  assert.ok(ranges > 3)
  const disk = await target()
  const r = await install({ source: fx.img, disk, bmap: file })
  assert.equal(r.mode, 'bmap')
  assert.equal(r.ranges!.verified, ranges)
  await assertInstalled(disk, fx, DISK, dir)
  await assertMappedEqual(disk)
})

test('install() with a 1.2 bmap whose ranges partly lack digests writes them unverified, the others checked', async () => {
  const { file, ranges, withDigest } = await oldBmapFile('1.2', 'v12.bmap', (i) => i % 2 === 1)
  assert.ok(withDigest < ranges)
  const disk = await target()
  const r = await install({ source: fx.img, disk, bmap: file })
  assert.equal(r.ranges!.verified, withDigest)
  assert.equal(r.ranges!.unverified, ranges - withDigest, 'the report counts the ranges written unverified')
  await assertInstalled(disk, fx, DISK, dir)
  await assertMappedEqual(disk)
})

test("install() refuses an image that differs from a 1.4 bmap's SHA-1 range digest, and a 1.3 bmap whose file checksum is wrong", async () => {
  const b = decodeBmap(await fsp.readFile(fx.bmap))
  const ranges = b.ranges.map((r) => ({ first: r.first, last: r.last }))
  const xml = oldBmapXml({ version: '1.4', checksumType: 'sha1', image, blockSize: b.blockSize, ranges })
  // Flip one image byte inside a range past the first MiB.
  const changed = path.join(dir, 'changed.img')
  const bytes = new Uint8Array(image)
  const hit = b.ranges.find((r) => r.first * b.blockSize >= MiB)!
  bytes[hit.first * b.blockSize + 10]! ^= 1
  await fsp.writeFile(changed, bytes)
  await fsp.writeFile(path.join(dir, 'v14.bmap'), xml)
  await assert.rejects(
    install({ source: changed, disk: await target(), bmap: path.join(dir, 'v14.bmap') }),
    (e: unknown) => code('CHECKSUM_MISMATCH')(e) && /SHA-1/.test((e as Error).message),
  )
  const v13 = await oldBmapFile('1.3', 'v13-bad.bmap')
  await fsp.writeFile(v13.file, (await fsp.readFile(v13.file, 'utf8')).replace('<BlockSize> ', '<BlockSize>  '))
  await assert.rejects(install({ source: fx.img, disk: await target(), bmap: v13.file }), code('FORMAT_BMAP'))
})
