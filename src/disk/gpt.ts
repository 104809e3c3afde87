// GUID Partition Table: UEFI 2.10 §5.3. All fields little-endian. The primary header sits
// at LBA 1 with its entry array after it; the backup entry array and header fill the last
// sectors of the disk, the header in the very last one (§5.3.1). Both headers carry a CRC32
// of themselves and of the entry array (§5.3.2). Sector size 512 or 4096 throughout.

import { FormatError } from '../errors.js'
import { crc32 } from './crc32.js'
import { formatGuid, GUID_SIZE, GUID_ZERO, normalizeGuid, parseGuid, randomGuid } from './guid.js'
import { decodeMbr, encodeProtectiveMbr } from './mbr.js'

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
/** GPT partition entry fields (UEFI 2.10 Table 5-6). */
const EntOff = {
  PartitionTypeGUID: 0,
  UniquePartitionGUID: 16,
  StartingLBA: 32,
  EndingLBA: 40,
  Attributes: 48,
  PartitionName: 56,
} as const

/** "EFI PART". */
const SIGNATURE = 'EFI PART'
/** Header version 1.0; only the major half is checked on decode (gdisk and Linux accept any minor). */
const REVISION = 0x0001_0000
/** The defined header size; larger values leave reserved bytes inside the CRC. */
const HEADER_SIZE = 92
/** The entry size every tool writes; the spec allows 128 × 2^n. */
export const GPT_ENTRY_SIZE = 128
/** The default number of entries, and the minimum array space (16 KiB) the spec requires to be reserved. */
export const GPT_DEFAULT_ENTRIES = 128
const MIN_ARRAY_BYTES = 16384
/** Name field: 36 UTF-16LE code units, NUL-terminated if shorter. */
const NAME_UNITS = 36
/** Guards allocation on hostile headers: 1 MiB of entries is 8192 entries of 128 bytes, far above any real table. */
const MAX_ARRAY_BYTES = 1 << 20
const SECTOR_SIZES = [512, 4096] as const
const MAX_U64 = (1n << 64n) - 1n

/** One used slot of a partition entry array. */
export interface GptPartition {
  /** 1-based slot in the entry array. */
  number: number
  typeGuid: string
  uniqueGuid: string
  firstLba: bigint
  /** Inclusive. */
  lastLba: bigint
  attributes: bigint
  name: string
}

/** A partition table independent of where its copies sit. */
export interface Gpt {
  sectorSize: number
  diskGuid: string
  /** The disk's size in sectors (the backup header goes in the last one). */
  diskSectors: bigint
  firstUsableLba: bigint
  lastUsableLba: bigint
  /** Number of slots in the entry array (128). */
  entryCount: number
  /** Only non-empty slots, in slot order. */
  partitions: GptPartition[]
}

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

/** Something wrong with a disk's GPT that still leaves a usable table. */
export interface GptProblem {
  code:
    | 'PRIMARY_DAMAGED'
    | 'BACKUP_DAMAGED'
    | 'BACKUP_MISSING'
    | 'BACKUP_NOT_AT_END'
    | 'MISALIGNED'
    | 'OVERLAP'
    | 'OUT_OF_RANGE'
    | 'HEADERS_DISAGREE'
    | 'MBR_NOT_PROTECTIVE'
    | 'DUPLICATE_GUID'
  message: string
  /** The partition (slot number) concerned, if any. */
  partition?: number
}

const fail = (action: string, state: string): FormatError => new FormatError('FORMAT_GPT', `Cannot ${action}: ${state}`)
const hex32 = (n: number): string => `0x${n.toString(16).toUpperCase().padStart(8, '0')}`
const ceilDiv = (a: number, b: number): number => Math.ceil(a / b)

function checkSectorSize(sectorSize: number, action: string): void {
  if (!(SECTOR_SIZES as readonly number[]).includes(sectorSize)) {
    throw fail(action, `expected sector size 512 or 4096, got ${sectorSize}`)
  }
}

/** Sectors reserved for an entry array of `entryCount` 128-byte entries (at least 16 KiB, §5.3.1). */
export function entryArraySectors(entryCount: number, sectorSize: number): number {
  return ceilDiv(Math.max(entryCount * GPT_ENTRY_SIZE, MIN_ARRAY_BYTES), sectorSize)
}

/** Decodes and checks one GPT header sector: length, signature, ranges, then CRC. Does not check where it was found. */
export function decodeGptHeader(sector: Uint8Array): GptHeader {
  const action = 'decode GPT header'
  if (sector.length < HEADER_SIZE) throw fail(action, `expected at least ${HEADER_SIZE} bytes, got ${sector.length}`)
  const sig = String.fromCharCode(...sector.subarray(HdrOff.Signature, HdrOff.Signature + SIGNATURE.length))
  if (sig !== SIGNATURE) throw fail(action, `expected signature "${SIGNATURE}", got ${JSON.stringify(sig)}`)
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
  if (h.revision >>> 16 !== REVISION >>> 16) throw fail(action, `expected revision 1.x (${hex32(REVISION)}), got ${hex32(h.revision)}`)
  if (h.headerSize < HEADER_SIZE || h.headerSize > sector.length) {
    throw fail(action, `expected HeaderSize from ${HEADER_SIZE} to ${sector.length}, got ${h.headerSize}`)
  }
  const es = h.sizeOfPartitionEntry
  if (es < GPT_ENTRY_SIZE || es % GPT_ENTRY_SIZE !== 0 || ((es / GPT_ENTRY_SIZE) & (es / GPT_ENTRY_SIZE - 1)) !== 0) {
    throw fail(action, `expected SizeOfPartitionEntry 128 × 2^n, got ${es}`)
  }
  const arrayBytes = h.numberOfPartitionEntries * es
  if (h.numberOfPartitionEntries < 1 || arrayBytes > MAX_ARRAY_BYTES) {
    throw fail(action, `expected 1 to ${MAX_ARRAY_BYTES} bytes of partition entries, got ${h.numberOfPartitionEntries} × ${es}`)
  }
  if (h.myLba < 1n || h.alternateLba < 1n || h.myLba === h.alternateLba) {
    throw fail(action, `expected distinct MyLBA and AlternateLBA of at least 1, got ${h.myLba} and ${h.alternateLba}`)
  }
  if (h.firstUsableLba > h.lastUsableLba) {
    throw fail(action, `expected FirstUsableLBA ≤ LastUsableLBA, got ${h.firstUsableLba} > ${h.lastUsableLba}`)
  }
  const inUsable = (lba: bigint): boolean => lba >= h.firstUsableLba && lba <= h.lastUsableLba
  if (inUsable(h.myLba) || inUsable(h.alternateLba)) {
    throw fail(action, `expected MyLBA ${h.myLba} and AlternateLBA ${h.alternateLba} outside the usable LBAs ${h.firstUsableLba}–${h.lastUsableLba}`)
  }
  // The array lies between this header and the usable area: before FirstUsableLBA for a
  // primary, after LastUsableLBA for a backup (§5.3.1); a sector-size-free check of that.
  const arrayEnd = h.partitionEntryLba + BigInt(ceilDiv(arrayBytes, sector.length))
  const before = h.partitionEntryLba > h.myLba && arrayEnd <= h.firstUsableLba
  const after = h.partitionEntryLba > h.lastUsableLba && arrayEnd <= h.myLba
  if (!before && !after) {
    throw fail(action, `expected PartitionEntryLBA outside the usable LBAs and apart from MyLBA ${h.myLba}, got ${h.partitionEntryLba}`)
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
  if (h.headerSize < HEADER_SIZE || h.headerSize > sectorSize) {
    throw fail('encode GPT header', `expected HeaderSize from ${HEADER_SIZE} to ${sectorSize}, got ${h.headerSize}`)
  }
  const out = new Uint8Array(sectorSize)
  const v = new DataView(out.buffer)
  for (let i = 0; i < SIGNATURE.length; i++) out[HdrOff.Signature + i] = SIGNATURE.charCodeAt(i)
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

/** Decodes the used slots of an entry array after checking its length and PartitionEntryArrayCRC32 against `h`. */
export function decodePartitionEntries(bytes: Uint8Array, h: GptHeader): GptPartition[] {
  const action = 'decode GPT partition entries'
  const size = h.sizeOfPartitionEntry
  const arrayBytes = h.numberOfPartitionEntries * size
  if (size < GPT_ENTRY_SIZE || arrayBytes > MAX_ARRAY_BYTES) {
    throw fail(action, `expected at most ${MAX_ARRAY_BYTES} bytes of entries of at least ${GPT_ENTRY_SIZE} bytes, got ${h.numberOfPartitionEntries} × ${size}`)
  }
  if (bytes.length < arrayBytes) throw fail(action, `expected at least ${arrayBytes} bytes, got ${bytes.length}`)
  const actual = crc32(bytes.subarray(0, arrayBytes))
  if (actual !== h.partitionEntryArrayCrc32) {
    throw fail(action, `expected PartitionEntryArrayCRC32 ${hex32(h.partitionEntryArrayCrc32)}, got ${hex32(actual)}`)
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, arrayBytes)
  const parts: GptPartition[] = []
  for (let i = 0; i < h.numberOfPartitionEntries; i++) {
    const e = i * size
    const typeGuid = formatGuid(bytes.subarray(e + EntOff.PartitionTypeGUID, e + EntOff.PartitionTypeGUID + GUID_SIZE))
    if (typeGuid === GUID_ZERO) continue // an unused entry (§5.3.3)
    const firstLba = v.getBigUint64(e + EntOff.StartingLBA, true)
    const lastLba = v.getBigUint64(e + EntOff.EndingLBA, true)
    if (lastLba < firstLba) throw fail(action, `expected EndingLBA ≥ StartingLBA in partition ${i + 1}, got ${lastLba} < ${firstLba}`)
    // Code units one by one, not TextDecoder, so that any name (even a lone surrogate) reads back as written.
    let name = ''
    for (let k = 0; k < NAME_UNITS; k++) {
      const unit = v.getUint16(e + EntOff.PartitionName + 2 * k, true)
      if (unit === 0) break
      name += String.fromCharCode(unit)
    }
    parts.push({
      number: i + 1,
      typeGuid,
      uniqueGuid: formatGuid(bytes.subarray(e + EntOff.UniquePartitionGUID, e + EntOff.UniquePartitionGUID + GUID_SIZE)),
      firstLba,
      lastLba,
      attributes: v.getBigUint64(e + EntOff.Attributes, true),
      name,
    })
  }
  return parts
}

/** Encodes partitions into an entry array of `entryCount` slots of `entrySize` bytes (unused slots zero). */
export function encodePartitionEntries(parts: GptPartition[], entryCount: number, entrySize = GPT_ENTRY_SIZE): Uint8Array {
  const action = 'encode GPT partition entries'
  if (!Number.isInteger(entrySize) || entrySize < GPT_ENTRY_SIZE || entrySize % GPT_ENTRY_SIZE !== 0) {
    throw fail(action, `expected an entry size that is a multiple of ${GPT_ENTRY_SIZE}, got ${entrySize}`)
  }
  if (!Number.isInteger(entryCount) || entryCount < 1 || entryCount * entrySize > MAX_ARRAY_BYTES) {
    throw fail(action, `expected 1 to ${MAX_ARRAY_BYTES / entrySize} entries, got ${entryCount}`)
  }
  const out = new Uint8Array(entryCount * entrySize)
  const v = new DataView(out.buffer)
  const used = new Set<number>()
  for (const p of parts) {
    if (!Number.isInteger(p.number) || p.number < 1 || p.number > entryCount) {
      throw fail(action, `expected partition numbers from 1 to ${entryCount}, got ${p.number}`)
    }
    if (used.has(p.number)) throw fail(action, `expected each partition number once, got ${p.number} twice`)
    used.add(p.number)
    const type = normalizeGuid(p.typeGuid)
    if (type === GUID_ZERO) throw fail(action, `expected a non-zero type GUID in partition ${p.number}, got "${p.typeGuid}"`)
    if (p.firstLba < 0n || p.lastLba < p.firstLba || p.lastLba > MAX_U64) {
      throw fail(action, `expected 0 ≤ StartingLBA ≤ EndingLBA in partition ${p.number}, got ${p.firstLba} and ${p.lastLba}`)
    }
    if (p.attributes < 0n || p.attributes > MAX_U64) throw fail(action, `expected 64-bit attributes in partition ${p.number}, got ${p.attributes}`)
    if (p.name.length > NAME_UNITS || p.name.includes('\0')) {
      throw fail(action, `expected a name of at most ${NAME_UNITS} UTF-16 code units without NUL in partition ${p.number}, got ${JSON.stringify(p.name)}`)
    }
    const e = (p.number - 1) * entrySize
    out.set(parseGuid(type), e + EntOff.PartitionTypeGUID)
    out.set(parseGuid(p.uniqueGuid), e + EntOff.UniquePartitionGUID)
    v.setBigUint64(e + EntOff.StartingLBA, p.firstLba, true)
    v.setBigUint64(e + EntOff.EndingLBA, p.lastLba, true)
    v.setBigUint64(e + EntOff.Attributes, p.attributes, true)
    for (let k = 0; k < p.name.length; k++) v.setUint16(e + EntOff.PartitionName + 2 * k, p.name.charCodeAt(k), true)
  }
  return out
}

/** An empty table for a disk of `diskSectors` sectors, with the usable range left by two arrays of `entryCount` entries. */
export function newGpt(opts: { sectorSize: number; diskSectors: bigint; diskGuid?: string; entryCount?: number }): Gpt {
  const action = 'create GPT'
  checkSectorSize(opts.sectorSize, action)
  const entryCount = opts.entryCount ?? GPT_DEFAULT_ENTRIES
  if (!Number.isInteger(entryCount) || entryCount < 1 || entryCount * GPT_ENTRY_SIZE > MAX_ARRAY_BYTES) {
    throw fail(action, `expected 1 to ${MAX_ARRAY_BYTES / GPT_ENTRY_SIZE} entries, got ${entryCount}`)
  }
  const array = BigInt(entryArraySectors(entryCount, opts.sectorSize))
  const firstUsableLba = 2n + array
  const lastUsableLba = opts.diskSectors - 2n - array
  if (lastUsableLba < firstUsableLba) {
    throw fail(action, `expected a disk of at least ${firstUsableLba + array + 2n} sectors, got ${opts.diskSectors}`)
  }
  return {
    sectorSize: opts.sectorSize,
    diskGuid: opts.diskGuid === undefined ? randomGuid() : normalizeGuid(opts.diskGuid),
    diskSectors: opts.diskSectors,
    firstUsableLba,
    lastUsableLba,
    entryCount,
    partitions: [],
  }
}

/** Where each copy of a table lives on its disk; throws if the arrays would collide with the usable range. */
function placement(gpt: Gpt, action: string): { array: bigint; backupEntryLba: bigint; lastLba: bigint } {
  checkSectorSize(gpt.sectorSize, action)
  const array = BigInt(entryArraySectors(gpt.entryCount, gpt.sectorSize))
  const lastLba = gpt.diskSectors - 1n
  const backupEntryLba = lastLba - array
  if (gpt.firstUsableLba < 2n + array) {
    throw fail(action, `expected FirstUsableLBA ≥ ${2n + array} after the primary entry array, got ${gpt.firstUsableLba}`)
  }
  if (gpt.lastUsableLba >= backupEntryLba) {
    throw fail(action, `expected LastUsableLBA < ${backupEntryLba} before the backup entry array, got ${gpt.lastUsableLba}`)
  }
  if (gpt.firstUsableLba > gpt.lastUsableLba) {
    throw fail(action, `expected FirstUsableLBA ≤ LastUsableLBA, got ${gpt.firstUsableLba} > ${gpt.lastUsableLba}`)
  }
  return { array, backupEntryLba, lastLba }
}

/**
 * The bytes of both GPT copies for a disk: `primary` = LBA 0 (protective MBR, with optional boot code)
 * through the end of the primary entry array; `backup` = backup entry array + backup header, to be
 * written at byte offset `backupOffset`. Layout problems (overlap, alignment) are validateGpt's job.
 */
export function encodeGpt(gpt: Gpt, opts: { bootCode?: Uint8Array } = {}): { primary: Uint8Array; backup: Uint8Array; backupOffset: bigint } {
  const { array, backupEntryLba, lastLba } = placement(gpt, 'encode GPT')
  const ss = gpt.sectorSize
  const entries = encodePartitionEntries(gpt.partitions, gpt.entryCount)
  const header = {
    revision: REVISION,
    headerSize: HEADER_SIZE,
    firstUsableLba: gpt.firstUsableLba,
    lastUsableLba: gpt.lastUsableLba,
    diskGuid: gpt.diskGuid,
    numberOfPartitionEntries: gpt.entryCount,
    sizeOfPartitionEntry: GPT_ENTRY_SIZE,
    partitionEntryArrayCrc32: crc32(entries),
  }
  const arrayBytes = Number(array) * ss
  const primary = new Uint8Array(2 * ss + arrayBytes)
  primary.set(encodeProtectiveMbr(gpt.diskSectors, opts.bootCode), 0)
  primary.set(encodeGptHeader({ ...header, myLba: 1n, alternateLba: lastLba, partitionEntryLba: 2n }, ss), ss)
  primary.set(entries, 2 * ss)
  const backup = new Uint8Array(arrayBytes + ss)
  backup.set(entries, 0)
  backup.set(encodeGptHeader({ ...header, myLba: lastLba, alternateLba: 1n, partitionEntryLba: backupEntryLba }, ss), arrayBytes)
  return { primary, backup, backupOffset: backupEntryLba * BigInt(ss) }
}

/** Problems of a table's layout: partitions not starting on `alignBytes` (default 1 MiB), overlapping, outside the usable range. */
export function validateGpt(gpt: Gpt, alignBytes = 1 << 20): GptProblem[] {
  const problems: GptProblem[] = []
  const ss = BigInt(gpt.sectorSize)
  const align = BigInt(alignBytes)
  for (const p of gpt.partitions) {
    if (p.number < 1 || p.number > gpt.entryCount || p.firstLba < gpt.firstUsableLba || p.lastLba > gpt.lastUsableLba || p.lastLba < p.firstLba) {
      problems.push({
        code: 'OUT_OF_RANGE',
        partition: p.number,
        message: `Partition ${p.number} (LBA ${p.firstLba}–${p.lastLba}) is outside the usable LBAs ${gpt.firstUsableLba}–${gpt.lastUsableLba}`,
      })
    }
    // Only the start is checked: the end of a grown last partition is LastUsableLBA, never aligned.
    if (align > 0n && (p.firstLba * ss) % align !== 0n) {
      problems.push({ code: 'MISALIGNED', partition: p.number, message: `Partition ${p.number} starts at LBA ${p.firstLba}, not on a ${alignBytes}-byte boundary` })
    }
  }
  const sorted = [...gpt.partitions].sort((a, b) => (a.firstLba < b.firstLba ? -1 : a.firstLba > b.firstLba ? 1 : a.number - b.number))
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!
    for (let j = i + 1; j < sorted.length && sorted[j]!.firstLba <= a.lastLba; j++) {
      const b = sorted[j]!
      problems.push({ code: 'OVERLAP', partition: b.number, message: `Partition ${b.number} (LBA ${b.firstLba}–${b.lastLba}) overlaps partition ${a.number} (LBA ${a.firstLba}–${a.lastLba})` })
    }
  }
  const seen = new Map<string, number>([[gpt.diskGuid.toUpperCase(), 0]])
  for (const p of gpt.partitions) {
    const g = p.uniqueGuid.toUpperCase()
    const other = seen.get(g)
    if (other !== undefined) {
      problems.push({ code: 'DUPLICATE_GUID', partition: p.number, message: `Partition ${p.number} has the unique GUID "${g}" of ${other === 0 ? 'the disk' : `partition ${other}`}` })
    } else seen.set(g, p.number)
  }
  return problems
}

/** The same table for a disk of another size: backup at the new end, LastUsableLBA moved; shrinking must leave every partition inside. */
export function resizeGpt(gpt: Gpt, diskSectors: bigint): Gpt {
  checkSectorSize(gpt.sectorSize, 'resize GPT')
  const lastUsableLba = diskSectors - 2n - BigInt(entryArraySectors(gpt.entryCount, gpt.sectorSize))
  const needed = gpt.partitions.reduce((m, p) => (p.lastLba > m ? p.lastLba : m), gpt.firstUsableLba)
  if (lastUsableLba < needed) {
    const minSectors = diskSectors + (needed - lastUsableLba)
    throw new FormatError('TARGET_TOO_SMALL', `Cannot resize GPT: expected a disk of at least ${minSectors} sectors, got ${diskSectors}`)
  }
  return { ...gpt, diskSectors, lastUsableLba, partitions: gpt.partitions.map((p) => ({ ...p })) }
}

/** One copy of a table read from a disk: its header and partitions. */
interface GptCopy {
  header: GptHeader
  partitions: GptPartition[]
}

/**
 * Decodes a disk's GPT from its first bytes (at least 34 sectors) and last bytes (at least 33 sectors),
 * preferring the primary copy and falling back to the backup; problems found are listed, not thrown,
 * unless neither copy is usable (then FormatError 'FORMAT_GPT'). `gpt.diskSectors` is the disk's
 * real size (from `diskBytes`), even when the headers were written for another size.
 */
export function decodeGpt(
  head: Uint8Array,
  tail: Uint8Array,
  diskBytes: bigint,
  sectorSize: number,
): { gpt: Gpt; primaryOk: boolean; backupOk: boolean; problems: GptProblem[] } {
  const action = 'decode GPT'
  checkSectorSize(sectorSize, action)
  const ss = BigInt(sectorSize)
  const diskSectors = diskBytes / ss
  if (diskSectors < 3n) throw fail(action, `expected a disk of at least 3 sectors of ${sectorSize} bytes, got ${diskBytes} bytes`)
  if (BigInt(tail.length) > diskBytes) throw fail(action, `expected at most ${diskBytes} bytes of disk tail, got ${tail.length}`)
  const lastLba = diskSectors - 1n
  const tailStart = diskBytes - BigInt(tail.length)

  // Sectors [lba, lba + count) from whichever window holds them whole, or a message saying neither does.
  const sectors = (lba: bigint, count: bigint): Uint8Array | string => {
    const from = lba * ss
    const to = (lba + count) * ss
    if (to <= BigInt(head.length)) return head.subarray(Number(from), Number(to))
    if (from >= tailStart && to <= diskBytes) return tail.subarray(Number(from - tailStart), Number(to - tailStart))
    return `LBA ${lba}–${lba + count - 1n} is not in the ${head.length} head bytes or the ${tail.length} tail bytes given`
  }
  const readCopy = (lba: bigint): GptCopy | string => {
    const sector = sectors(lba, 1n)
    if (typeof sector === 'string') return sector
    try {
      const header = decodeGptHeader(sector)
      if (header.myLba !== lba) return `header at LBA ${lba} says MyLBA ${header.myLba}`
      const arrayBytes = header.numberOfPartitionEntries * header.sizeOfPartitionEntry
      const array = sectors(header.partitionEntryLba, BigInt(ceilDiv(arrayBytes, sectorSize)))
      if (typeof array === 'string') return array
      return { header, partitions: decodePartitionEntries(array, header) }
    } catch (e) {
      if (e instanceof FormatError) return e.message
      throw e
    }
  }

  const problems: GptProblem[] = []
  try {
    const mbr = decodeMbr(head)
    if (!mbr.protective) {
      problems.push({ code: 'MBR_NOT_PROTECTIVE', message: mbr.hybrid ? 'The MBR is a hybrid MBR, not a protective one' : 'The MBR has no protective 0xEE partition from LBA 1' })
    }
  } catch (e) {
    if (!(e instanceof FormatError)) throw e
    problems.push({ code: 'MBR_NOT_PROTECTIVE', message: e.message })
  }

  const primary = readCopy(1n)
  if (typeof primary === 'string') problems.push({ code: 'PRIMARY_DAMAGED', message: `Primary GPT is damaged: ${primary}` })
  let backupLba = lastLba
  if (typeof primary !== 'string' && primary.header.alternateLba !== lastLba) {
    backupLba = primary.header.alternateLba
    const where = `the primary header puts the backup at LBA ${backupLba}, the disk's last LBA is ${lastLba}`
    problems.push(backupLba > lastLba ? { code: 'BACKUP_MISSING', message: `Backup GPT is past the end of the disk: ${where}` } : { code: 'BACKUP_NOT_AT_END', message: `Backup GPT is not at the end of the disk: ${where}` })
  }
  const backup = backupLba > lastLba ? `LBA ${backupLba} is past the end of the disk` : readCopy(backupLba)
  if (typeof backup === 'string' && backupLba <= lastLba && (backupLba === lastLba || typeof sectors(backupLba, 1n) !== 'string')) {
    problems.push({ code: 'BACKUP_DAMAGED', message: `Backup GPT is damaged: ${backup}` })
  }
  const chosen = typeof primary !== 'string' ? primary : backup
  if (typeof chosen === 'string') {
    const other = sectorSize === 512 ? 4096 : 512
    const hint = head.length >= other + 8 && String.fromCharCode(...head.subarray(other, other + 8)) === SIGNATURE ? `The disk looks like it uses ${other}-byte sectors` : undefined
    throw new FormatError('FORMAT_GPT', `Cannot decode GPT: no usable copy (primary: ${primary}; backup: ${backup})`, { hint })
  }
  if (typeof primary !== 'string' && typeof backup !== 'string') {
    const a = primary.header
    const b = backup.header
    const fields: string[] = (['diskGuid', 'firstUsableLba', 'lastUsableLba', 'numberOfPartitionEntries', 'sizeOfPartitionEntry', 'partitionEntryArrayCrc32'] as const).filter((k) => a[k] !== b[k])
    if (b.alternateLba !== a.myLba) fields.push('alternateLba')
    if (fields.length > 0) problems.push({ code: 'HEADERS_DISAGREE', message: `Primary and backup GPT headers differ in ${fields.join(', ')}` })
  }
  const h = chosen.header
  const gpt: Gpt = {
    sectorSize,
    diskGuid: h.diskGuid,
    diskSectors,
    firstUsableLba: h.firstUsableLba,
    lastUsableLba: h.lastUsableLba,
    entryCount: h.numberOfPartitionEntries,
    partitions: chosen.partitions,
  }
  problems.push(...validateGpt(gpt))
  for (const p of gpt.partitions) {
    if (p.lastLba > lastLba) {
      problems.push({ code: 'OUT_OF_RANGE', partition: p.number, message: `Partition ${p.number} ends at LBA ${p.lastLba}, past the disk's last LBA ${lastLba}` })
    }
  }
  return { gpt, primaryOk: typeof primary !== 'string', backupOk: typeof backup !== 'string', problems }
}
