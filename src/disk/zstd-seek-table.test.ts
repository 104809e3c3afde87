import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeSeekTable, encodeSeekTable, FOOTER_BYTES, framesFor, seekTableLength } from './zstd-seek-table.js'
import { InputError } from '../errors.js'

const sizes = [
  { compressedSize: 100, imageSize: 1000 },
  { compressedSize: 20, imageSize: 1000 },
  { compressedSize: 300, imageSize: 500 },
]
const fileSize = (table: Uint8Array): number => 420 + table.length

test('seek table: what is encoded decodes to frames at cumulative offsets', () => {
  const table = encodeSeekTable(sizes)
  assert.equal(table.length, 8 + 3 * 8 + FOOTER_BYTES)
  assert.equal(seekTableLength(table.subarray(table.length - FOOTER_BYTES), fileSize(table), 'x'), table.length)
  const t = decodeSeekTable(table, fileSize(table), 'x')
  assert.equal(t.imageSize, 2500)
  assert.deepEqual(
    t.frames.map((f) => [f.compressedOffset, f.compressedSize, f.imageOffset, f.imageSize]),
    [
      [0, 100, 0, 1000],
      [100, 20, 1000, 1000],
      [120, 300, 2000, 500],
    ],
  )
})

test('seek table: a file without the seekable magic has none; a damaged one is SOURCE_CORRUPT', () => {
  assert.equal(seekTableLength(new Uint8Array(FOOTER_BYTES), 1000, 'x'), undefined)
  const table = encodeSeekTable(sizes)
  const corrupt = (e: unknown) => e instanceof InputError && e.code === 'SOURCE_CORRUPT' && /"x\.zst"/.test(e.message)
  // Frames that do not add up to the bytes before the table.
  assert.throws(() => decodeSeekTable(table, fileSize(table) + 1, 'x.zst'), corrupt)
  // Reserved descriptor bits.
  const reserved = table.slice()
  reserved[reserved.length - 5] = 0x04
  assert.throws(
    () => seekTableLength(reserved.subarray(reserved.length - FOOTER_BYTES), fileSize(table), 'x.zst'),
    corrupt,
  )
  // A frame count larger than the file.
  const huge = table.slice()
  new DataView(huge.buffer).setUint32(huge.length - FOOTER_BYTES, 1e8, true)
  assert.throws(() => seekTableLength(huge.subarray(huge.length - FOOTER_BYTES), fileSize(table), 'x.zst'), corrupt)
  // No skippable frame where the footer says the table starts.
  const noMagic = table.slice()
  noMagic[0] = 0
  assert.throws(() => decodeSeekTable(noMagic, fileSize(table), 'x.zst'), corrupt)
})

test('framesFor: the frames any span touches, each once, in order', () => {
  const t = decodeSeekTable(encodeSeekTable(sizes), fileSize(encodeSeekTable(sizes)), 'x')
  const idx = (spans: Array<{ offset: number; length: number }>) => framesFor(t, spans).map((f) => f.imageOffset)
  assert.deepEqual(idx([]), [])
  assert.deepEqual(idx([{ offset: 0, length: 1 }]), [0])
  assert.deepEqual(idx([{ offset: 999, length: 2 }]), [0, 1000])
  assert.deepEqual(
    idx([
      { offset: 2100, length: 10 },
      { offset: 0, length: 1000 },
    ]),
    [0, 2000],
  )
  assert.deepEqual(idx([{ offset: 1000, length: 0 }]), [])
})
