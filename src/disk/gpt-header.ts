// GPT header: UEFI 2.10 §5.3.2. All fields little-endian. HeaderCRC32 covers HeaderSize bytes
// with the CRC field itself zero; PartitionEntryArrayCRC32 covers NumberOfPartitionEntries ×
// SizeOfPartitionEntry bytes of the array the header points at.

import { FormatError } from '../errors.js'
import { crc32 } from './crc32.js'
import { formatGuid, GUID_SIZE, parseGuid } from './guid.js'

/** GPT header fields (UEFI 2.10 Table 5-5). */
const HdrOff = {
  Signature: 0,
  Revision: 8,
  HeaderSize: 12,
  HeaderCRC32: 16,
  Reserved: 20,
  MyLBA: 24,
  AlternateLBA: 32,
  FirstUsableLBA: 40,
  LastUsableLBA: 48,
  DiskGUID: 56,
  PartitionEntryLBA: 72,
  NumberOfPartitionEntries: 80,
  SizeOfPartitionEntry: 84,
  PartitionEntryArrayCRC32: 88,
} as const

/** "EFI PART". */
export const GPT_SIGNATURE = 'EFI PART'
/** Header version 1.0; only the major half is checked on decode (gdisk and Linux accept any minor). */
export const GPT_REVISION = 0x0001_0000
/** The defined header size; larger values leave reserved bytes inside the CRC. */
export const GPT_HEADER_SIZE = 92
/** The entry size every tool writes; the spec allows 128 × 2^n. */
export const GPT_ENTRY_SIZE = 128
/** Guards allocation on hostile headers: 1 MiB of entries is 8192 entries of 128 bytes, far above any real table. */
export const GPT_MAX_ARRAY_BYTES = 1 << 20
const SECTOR_SIZES: readonly number[] = [512, 4096]

/** A decoded GPT header (UEFI 2.10 Table 5-5). */
export interface GptHeader {
  revision: number
  headerSize: number
  headerCrc32: number
  myLba: bigint
  alternateLba: bigint
  firstUsableLba: bigint
  lastUsableLba: bigint
  diskGuid: string
  partitionEntryLba: bigint
  numberOfPartitionEntries: number
  sizeOfPartitionEntry: number
  partitionEntryArrayCrc32: number
}

const fail = (action: string, state: string): FormatError => new FormatError('FORMAT_GPT', `Cannot ${action}: ${state}`)
const hex32 = (n: number): string => `0x${n.toString(16).toUpperCase().padStart(8, '0')}`
const ceilDiv = (a: number, b: number): number => Math.ceil(a / b)

/** Throws FORMAT_GPT unless `sectorSize` is 512 or 4096. */
export function checkSectorSize(sectorSize: number, action: string): void {
  if (!SECTOR_SIZES.includes(sectorSize)) throw fail(action, `expected sector size 512 or 4096, got ${sectorSize}`)
}

/** Decodes and checks one GPT header sector: length, signature, ranges, then CRC. Does not check where it was found. */
export function decodeGptHeader(sector: Uint8Array): GptHeader {
  const action = 'decode GPT header'
  if (sector.length < GPT_HEADER_SIZE)
    throw fail(action, `expected at least ${GPT_HEADER_SIZE} bytes, got ${sector.length}`)
  const sig = String.fromCharCode(...sector.subarray(HdrOff.Signature, HdrOff.Signature + GPT_SIGNATURE.length))
  if (sig !== GPT_SIGNATURE) throw fail(action, `expected signature "${GPT_SIGNATURE}", got ${JSON.stringify(sig)}`)
  const v = new DataView(sector.buffer, sector.byteOffset, sector.length)
  const h: GptHeader = {
    revision: v.getUint32(HdrOff.Revision, true),
    headerSize: v.getUint32(HdrOff.HeaderSize, true),
    headerCrc32: v.getUint32(HdrOff.HeaderCRC32, true),
    myLba: v.getBigUint64(HdrOff.MyLBA, true),
    alternateLba: v.getBigUint64(HdrOff.AlternateLBA, true),
    firstUsableLba: v.getBigUint64(HdrOff.FirstUsableLBA, true),
    lastUsableLba: v.getBigUint64(HdrOff.LastUsableLBA, true),
    diskGuid: formatGuid(sector.subarray(HdrOff.DiskGUID, HdrOff.DiskGUID + GUID_SIZE)),
    partitionEntryLba: v.getBigUint64(HdrOff.PartitionEntryLBA, true),
    numberOfPartitionEntries: v.getUint32(HdrOff.NumberOfPartitionEntries, true),
    sizeOfPartitionEntry: v.getUint32(HdrOff.SizeOfPartitionEntry, true),
    partitionEntryArrayCrc32: v.getUint32(HdrOff.PartitionEntryArrayCRC32, true),
  }
  if (h.revision >>> 16 !== GPT_REVISION >>> 16)
    throw fail(action, `expected revision 1.x (${hex32(GPT_REVISION)}), got ${hex32(h.revision)}`)
  if (h.headerSize < GPT_HEADER_SIZE || h.headerSize > sector.length) {
    throw fail(action, `expected HeaderSize from ${GPT_HEADER_SIZE} to ${sector.length}, got ${h.headerSize}`)
  }
  const es = h.sizeOfPartitionEntry
  if (es < GPT_ENTRY_SIZE || es % GPT_ENTRY_SIZE !== 0 || ((es / GPT_ENTRY_SIZE) & (es / GPT_ENTRY_SIZE - 1)) !== 0) {
    throw fail(action, `expected SizeOfPartitionEntry 128 × 2^n, got ${es}`)
  }
  const arrayBytes = h.numberOfPartitionEntries * es
  if (h.numberOfPartitionEntries < 1 || arrayBytes > GPT_MAX_ARRAY_BYTES) {
    throw fail(
      action,
      `expected 1 to ${GPT_MAX_ARRAY_BYTES} bytes of partition entries, got ${h.numberOfPartitionEntries} × ${es}`,
    )
  }
  if (h.myLba < 1n || h.alternateLba < 1n || h.myLba === h.alternateLba) {
    throw fail(action, `expected distinct MyLBA and AlternateLBA of at least 1, got ${h.myLba} and ${h.alternateLba}`)
  }
  if (h.firstUsableLba > h.lastUsableLba) {
    throw fail(action, `expected FirstUsableLBA ≤ LastUsableLBA, got ${h.firstUsableLba} > ${h.lastUsableLba}`)
  }
  const inUsable = (lba: bigint): boolean => lba >= h.firstUsableLba && lba <= h.lastUsableLba
  if (inUsable(h.myLba) || inUsable(h.alternateLba)) {
    throw fail(
      action,
      `expected MyLBA ${h.myLba} and AlternateLBA ${h.alternateLba} outside the usable LBAs ${h.firstUsableLba}–${h.lastUsableLba}`,
    )
  }
  // The array lies between this header and the usable area: before FirstUsableLBA for a
  // primary, after LastUsableLBA for a backup (§5.3.1); a sector-size-free check of that.
  const arrayEnd = h.partitionEntryLba + BigInt(ceilDiv(arrayBytes, sector.length))
  const before = h.partitionEntryLba > h.myLba && arrayEnd <= h.firstUsableLba
  const after = h.partitionEntryLba > h.lastUsableLba && arrayEnd <= h.myLba
  if (!before && !after) {
    throw fail(
      action,
      `expected PartitionEntryLBA outside the usable LBAs and apart from MyLBA ${h.myLba}, got ${h.partitionEntryLba}`,
    )
  }
  const copy = new Uint8Array(sector.subarray(0, h.headerSize))
  new DataView(copy.buffer).setUint32(HdrOff.HeaderCRC32, 0, true)
  const actual = crc32(copy)
  if (actual !== h.headerCrc32) throw fail(action, `expected HeaderCRC32 ${hex32(h.headerCrc32)}, got ${hex32(actual)}`)
  return h
}

/** Encodes a GPT header into one sector of `sectorSize` bytes; the CRC is computed and written last. */
export function encodeGptHeader(h: Omit<GptHeader, 'headerCrc32'>, sectorSize: number): Uint8Array {
  checkSectorSize(sectorSize, 'encode GPT header')
  if (h.headerSize < GPT_HEADER_SIZE || h.headerSize > sectorSize) {
    throw fail('encode GPT header', `expected HeaderSize from ${GPT_HEADER_SIZE} to ${sectorSize}, got ${h.headerSize}`)
  }
  const out = new Uint8Array(sectorSize)
  const v = new DataView(out.buffer)
  for (let i = 0; i < GPT_SIGNATURE.length; i++) out[HdrOff.Signature + i] = GPT_SIGNATURE.charCodeAt(i)
  v.setUint32(HdrOff.Revision, h.revision, true)
  v.setUint32(HdrOff.HeaderSize, h.headerSize, true)
  v.setBigUint64(HdrOff.MyLBA, h.myLba, true)
  v.setBigUint64(HdrOff.AlternateLBA, h.alternateLba, true)
  v.setBigUint64(HdrOff.FirstUsableLBA, h.firstUsableLba, true)
  v.setBigUint64(HdrOff.LastUsableLBA, h.lastUsableLba, true)
  out.set(parseGuid(h.diskGuid), HdrOff.DiskGUID)
  v.setBigUint64(HdrOff.PartitionEntryLBA, h.partitionEntryLba, true)
  v.setUint32(HdrOff.NumberOfPartitionEntries, h.numberOfPartitionEntries, true)
  v.setUint32(HdrOff.SizeOfPartitionEntry, h.sizeOfPartitionEntry, true)
  v.setUint32(HdrOff.PartitionEntryArrayCRC32, h.partitionEntryArrayCrc32, true)
  v.setUint32(HdrOff.HeaderCRC32, crc32(out.subarray(0, h.headerSize)), true)
  return out
}
