import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HwimageError } from '../errors.js'
import { SlotPool } from '../io/aligned-memory.js'
import type { ImageReader } from '../io/image-reader.js'
import { TargetDevice } from '../io/target-device.js'
import { writeImage, type ImageRange, type WriteJob } from './write-image.js'

const KiB = 1024
const IMAGE = 2048 * KiB
const HOLD = 64 * KiB
const SLOT = 64 * KiB

/** An image in memory, read as the installer reads one. */
function memoryReader(bytes: Uint8Array): ImageReader {
  return {
    knownSize: bytes.length,
    async read(offset, dst) {
      const n = Math.max(0, Math.min(dst.length, bytes.length - offset))
      dst.set(bytes.subarray(offset, offset + n))
      return n
    },
    async finish() {
      return bytes.length
    },
    async close() {},
  }
}

const digestOf = (algorithm: 'sha1' | 'sha256', b: Uint8Array): string => createHash(algorithm).update(b).digest('hex')

/** Ranges over `image`: [offset, length, algorithm or none] with their right digests. */
function rangesOf(image: Uint8Array, spec: Array<[number, number, 'sha1' | 'sha256' | undefined]>): ImageRange[] {
  return spec.map(([offset, length, algorithm], i) => ({
    offset,
    length,
    ...(algorithm
      ? { checksum: { algorithm, digest: digestOf(algorithm, image.subarray(offset, offset + length)) } }
      : {}),
    label: `bmap range ${i + 1}`,
  }))
}

async function withTarget<T>(fn: (file: string, dev: TargetDevice) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-write-'))
  const file = path.join(dir, 'disk.raw')
  await fsp.writeFile(file, new Uint8Array(IMAGE))
  const dev = await TargetDevice.open(file, 512, { direct: false })
  try {
    return await fn(file, dev)
  } finally {
    await dev.close()
    await fsp.rm(dir, { recursive: true, force: true })
  }
}

const job = (ranges: ImageRange[], extra: Partial<WriteJob> = {}): WriteJob => ({
  mode: 'bmap',
  ranges,
  imageSize: IMAGE,
  holdBack: HOLD,
  targetSize: IMAGE,
  verifyLimit: 4 * SLOT,
  blockSize: 4096,
  recordExtents: false,
  ...extra,
})

// A short range, one longer than verifyLimit (streamed), one overlapping the held-back part.
const SPEC: Array<[number, number, 'sha1' | 'sha256' | undefined]> = [
  [32 * KiB, 64 * KiB, 'sha1'],
  [128 * KiB, 100 * KiB, 'sha256'],
  [256 * KiB, 12 * KiB, undefined],
  [512 * KiB, 5 * SLOT + 4096, 'sha1'],
  [1536 * KiB, 8 * KiB, undefined],
]

test('writeImage() checks SHA-1 and SHA-256 bmap ranges each with its algorithm, writes ranges without a digest unverified, and counts both', async () => {
  const image = new Uint8Array(randomBytes(IMAGE))
  const ranges = rangesOf(image, SPEC)
  await withTarget(async (file, dev) => {
    const out = await writeImage(memoryReader(image), dev, new SlotPool(SLOT, 8), job(ranges))
    assert.equal(out.rangesVerified, 3)
    assert.equal(out.rangesUnverified, 2)
    assert.equal(out.rangesStreamed, 1)
    const disk = new Uint8Array(await fsp.readFile(file))
    for (const r of ranges) {
      const from = Math.max(r.offset, HOLD)
      assert.deepEqual(disk.subarray(from, r.offset + r.length), image.subarray(from, r.offset + r.length), r.label)
    }
    assert.deepEqual(out.held.subarray(32 * KiB, HOLD), image.subarray(32 * KiB, HOLD))
    assert.ok(
      disk.subarray(300 * KiB, 512 * KiB).every((b) => b === 0),
      'unmapped bytes are not written',
    )
  })
})

test('writeImage() refuses a SHA-1 range whose bytes differ, naming SHA-1, before writing any of it', async () => {
  const image = new Uint8Array(randomBytes(IMAGE))
  const ranges = rangesOf(image, SPEC)
  image[80 * KiB]! ^= 0x40 // inside the SHA-1 range that fits verifyLimit
  await withTarget(async (file, dev) => {
    await assert.rejects(writeImage(memoryReader(image), dev, new SlotPool(SLOT, 8), job(ranges)), (e: unknown) => {
      return (
        e instanceof HwimageError &&
        e.code === 'CHECKSUM_MISMATCH' &&
        /bmap range 1 .*its SHA-1 is [0-9a-f]{40}, the bmap expects [0-9a-f]{40}/.test(e.message)
      )
    })
    const disk = new Uint8Array(await fsp.readFile(file))
    assert.ok(
      disk.subarray(HOLD, 96 * KiB).every((b) => b === 0),
      'nothing of the failed range was written',
    )
  })
  // The streamed SHA-1 range fails at its end too.
  const streamed = new Uint8Array(randomBytes(IMAGE))
  const r2 = rangesOf(streamed, SPEC)
  streamed[600 * KiB]! ^= 1
  await withTarget(async (_file, dev) => {
    await assert.rejects(
      writeImage(memoryReader(streamed), dev, new SlotPool(SLOT, 8), job(r2)),
      (e: unknown) => e instanceof HwimageError && e.code === 'CHECKSUM_MISMATCH' && /bmap range 4 /.test(e.message),
    )
  })
})

test("writeImage() records a SHA-256 of every written piece for read-back, whatever the range's own algorithm", async () => {
  const image = new Uint8Array(randomBytes(IMAGE))
  const ranges = rangesOf(image, SPEC)
  await withTarget(async (file, dev) => {
    const out = await writeImage(memoryReader(image), dev, new SlotPool(SLOT, 8), job(ranges, { recordExtents: true }))
    const disk = new Uint8Array(await fsp.readFile(file))
    let covered = 0
    for (const x of out.extents) {
      assert.equal(x.sha256, digestOf('sha256', disk.subarray(x.offset, x.offset + x.length)), `extent at ${x.offset}`)
      covered += x.length
    }
    const written = ranges.reduce((s, r) => s + r.offset + r.length - Math.max(r.offset, HOLD), 0)
    assert.equal(covered, written)
  })
})
