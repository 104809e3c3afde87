// The seek table of the Zstandard seekable format (zstd's contrib/seekable_format,
// version 0.1.0): a .zst made of independent frames, followed by one skippable frame that
// lists each frame's compressed and decompressed size. Any zstd decompresses such a file
// as usual (frames are concatenated, the skippable frame is ignored); the installer reads
// the table to decompress several frames at once and to skip the frames that hold none of
// the image's mapped data.
//
// The table frame, all fields little-endian:
//   Skippable_Magic_Number u32 = 0x184D2A5E, Frame_Size u32 (what follows),
//   Number_Of_Frames entries of { Compressed_Size u32, Decompressed_Size u32, [Checksum u32] },
//   footer { Number_Of_Frames u32, Seek_Table_Descriptor u8, Seekable_Magic_Number u32 = 0x8F92EAB1 }.
// Descriptor bit 7: entries carry a checksum (XXH64's low 32 bits; not written or checked
// here: every frame has zstd's own content checksum); bits 6–2 reserved, must be 0.

import { InputError } from '../errors.js'

export const SKIPPABLE_MAGIC = 0x184d2a5e
export const SEEKABLE_MAGIC = 0x8f92eab1
/** Number_Of_Frames, Seek_Table_Descriptor, Seekable_Magic_Number. */
export const FOOTER_BYTES = 9
const CHECKSUM_FLAG = 0x80
const RESERVED_BITS = 0x7c
/** Largest Decompressed_Size the format can hold (u32); the builder's frames are far smaller. */
export const MAX_FRAME_BYTES = 0xffffffff

/** One frame: where it is in the .zst, and which bytes of the image it holds. */
export interface SeekFrame {
  compressedOffset: number
  compressedSize: number
  imageOffset: number
  imageSize: number
}

/** A decoded seek table. */
export interface SeekTable {
  frames: SeekFrame[]
  /** Sum of the frames' decompressed sizes. */
  imageSize: number
  /** Bytes of the table frame at the end of the file. */
  tableBytes: number
}

/** The seek table frame for frames of these sizes (no checksums). */
export function encodeSeekTable(frames: Array<{ compressedSize: number; imageSize: number }>): Uint8Array {
  const frameSize = frames.length * 8 + FOOTER_BYTES
  const out = new Uint8Array(8 + frameSize)
  const v = new DataView(out.buffer)
  v.setUint32(0, SKIPPABLE_MAGIC, true)
  v.setUint32(4, frameSize, true)
  frames.forEach((f, i) => {
    if (f.compressedSize > MAX_FRAME_BYTES || f.imageSize > MAX_FRAME_BYTES)
      throw new RangeError(`frame ${i} is larger than a seek table entry holds`)
    v.setUint32(8 + i * 8, f.compressedSize, true)
    v.setUint32(12 + i * 8, f.imageSize, true)
  })
  const footer = 8 + frames.length * 8
  v.setUint32(footer, frames.length, true)
  v.setUint8(footer + 4, 0)
  v.setUint32(footer + 5, SEEKABLE_MAGIC, true)
  return out
}

/**
 * From the file's last FOOTER_BYTES: the length of its seek table frame, or undefined when
 * the file has no seek table (an ordinary .zst). Throws when the footer is there but cannot be.
 */
export function seekTableLength(footer: Uint8Array, fileSize: number, name: string): number | undefined {
  if (footer.length < FOOTER_BYTES) return undefined
  const v = new DataView(footer.buffer, footer.byteOffset + footer.length - FOOTER_BYTES, FOOTER_BYTES)
  if (v.getUint32(5, true) !== SEEKABLE_MAGIC) return undefined
  const descriptor = v.getUint8(4)
  if (descriptor & RESERVED_BITS)
    throw corrupt(name, `its seek table's descriptor has reserved bits set (0x${descriptor.toString(16)})`)
  const entry = descriptor & CHECKSUM_FLAG ? 12 : 8
  const length = 8 + v.getUint32(0, true) * entry + FOOTER_BYTES
  if (length > fileSize) throw corrupt(name, `its seek table claims ${length} bytes, the file has ${fileSize}`)
  return length
}

/** Decodes the seek table frame `table` (the file's last seekTableLength() bytes) of a file of `fileSize` bytes. */
export function decodeSeekTable(table: Uint8Array, fileSize: number, name: string): SeekTable {
  const v = new DataView(table.buffer, table.byteOffset, table.length)
  if (table.length < 8 + FOOTER_BYTES || v.getUint32(0, true) !== SKIPPABLE_MAGIC)
    throw corrupt(name, 'its seek table does not start with a skippable frame')
  if (v.getUint32(4, true) !== table.length - 8)
    throw corrupt(name, `its seek table frame says ${v.getUint32(4, true)} bytes, its footer ${table.length - 8}`)
  const count = v.getUint32(table.length - FOOTER_BYTES, true)
  const entry = v.getUint8(table.length - 5) & CHECKSUM_FLAG ? 12 : 8
  const frames: SeekFrame[] = []
  let compressedOffset = 0
  let imageOffset = 0
  for (let i = 0; i < count; i++) {
    const compressedSize = v.getUint32(8 + i * entry, true)
    const imageSize = v.getUint32(12 + i * entry, true)
    frames.push({ compressedOffset, compressedSize, imageOffset, imageSize })
    compressedOffset += compressedSize
    imageOffset += imageSize
  }
  if (compressedOffset !== fileSize - table.length) {
    throw corrupt(
      name,
      `its seek table lists ${compressedOffset} bytes of frames, the file has ${fileSize - table.length} before the table`,
    )
  }
  return { frames, imageSize: imageOffset, tableBytes: table.length }
}

/** The frames holding any byte of `spans` (image offsets, any order), in image order. */
export function framesFor(table: SeekTable, spans: Array<{ offset: number; length: number }>): SeekFrame[] {
  return table.frames.filter(
    (f) =>
      f.imageSize > 0 &&
      spans.some((x) => x.length > 0 && x.offset < f.imageOffset + f.imageSize && x.offset + x.length > f.imageOffset),
  )
}

function corrupt(name: string, what: string): InputError {
  return new InputError('SOURCE_CORRUPT', `Cannot read "${name}": ${what}`, {
    hint: 'the file is damaged or was changed after it was made: download it again and check its SHA-256',
  })
}
