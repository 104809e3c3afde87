// GUID Partition Table: UEFI 2.10 §5.3. All fields little-endian. The primary header sits
// at LBA 1 with its entry array after it; the backup entry array and header fill the last
// sectors of the disk, the header in the very last one (§5.3.1). Both headers carry a CRC32
// of themselves and of the entry array (§5.3.2). Sector size 512 or 4096 throughout.

import { FormatError } from '../errors.js'
import { crc32 } from './crc32.js'
import { normalizeGuid, randomGuid } from './guid.js'
import { decodeMbr, encodeProtectiveMbr } from './mbr.js'
import {
  checkSectorSize,
  decodeGptHeader,
  encodeGptHeader,
  GPT_ENTRY_SIZE,
  GPT_HEADER_SIZE,
  GPT_MAX_ARRAY_BYTES,
  GPT_REVISION,
  GPT_SIGNATURE,
  type GptHeader,
} from './gpt-header.js'
import { decodePartitionEntries, encodePartitionEntries, type GptPartition } from './gpt-entries.js'

// The per-struct codecs live in gpt-header.ts and gpt-entries.ts; this file is the whole-disk view,
// and re-exports them so that callers have one module for GPT.
export { decodeGptHeader, encodeGptHeader, GPT_ENTRY_SIZE, type GptHeader } from './gpt-header.js'
export { decodePartitionEntries, encodePartitionEntries, type GptPartition } from './gpt-entries.js'

/** The default number of entries, and the minimum array space (16 KiB) the spec requires to be reserved. */
export const GPT_DEFAULT_ENTRIES = 128
const MIN_ARRAY_BYTES = 16384

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
const ceilDiv = (a: number, b: number): number => Math.ceil(a / b)

/** Sectors reserved for an entry array of `entryCount` 128-byte entries (at least 16 KiB, §5.3.1). */
export function entryArraySectors(entryCount: number, sectorSize: number): number {
  return ceilDiv(Math.max(entryCount * GPT_ENTRY_SIZE, MIN_ARRAY_BYTES), sectorSize)
}
/** An empty table for a disk of `diskSectors` sectors, with the usable range left by two arrays of `entryCount` entries. */
export function newGpt(opts: { sectorSize: number; diskSectors: bigint; diskGuid?: string; entryCount?: number }): Gpt {
  const action = 'create GPT'
  checkSectorSize(opts.sectorSize, action)
  const entryCount = opts.entryCount ?? GPT_DEFAULT_ENTRIES
  if (!Number.isInteger(entryCount) || entryCount < 1 || entryCount * GPT_ENTRY_SIZE > GPT_MAX_ARRAY_BYTES) {
    throw fail(action, `expected 1 to ${GPT_MAX_ARRAY_BYTES / GPT_ENTRY_SIZE} entries, got ${entryCount}`)
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
    throw fail(
      action,
      `expected FirstUsableLBA ≥ ${2n + array} after the primary entry array, got ${gpt.firstUsableLba}`,
    )
  }
  if (gpt.lastUsableLba >= backupEntryLba) {
    throw fail(
      action,
      `expected LastUsableLBA < ${backupEntryLba} before the backup entry array, got ${gpt.lastUsableLba}`,
    )
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
export function encodeGpt(
  gpt: Gpt,
  opts: { bootCode?: Uint8Array } = {},
): { primary: Uint8Array; backup: Uint8Array; backupOffset: bigint } {
  const { array, backupEntryLba, lastLba } = placement(gpt, 'encode GPT')
  const ss = gpt.sectorSize
  const entries = encodePartitionEntries(gpt.partitions, gpt.entryCount)
  const header = {
    revision: GPT_REVISION,
    headerSize: GPT_HEADER_SIZE,
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
  backup.set(
    encodeGptHeader({ ...header, myLba: lastLba, alternateLba: 1n, partitionEntryLba: backupEntryLba }, ss),
    arrayBytes,
  )
  return { primary, backup, backupOffset: backupEntryLba * BigInt(ss) }
}

/**
 * Problems of a table's layout: partitions not starting on `alignBytes` (default 1 MiB; 0 = no check),
 * overlapping, outside the usable range or past the disk's end, a usable range that runs into the
 * backup entry array, and unique GUIDs used twice. decodeGpt() does not repeat these: call both.
 */
export function validateGpt(gpt: Gpt, alignBytes = 1 << 20): GptProblem[] {
  const problems: GptProblem[] = []
  const ss = BigInt(gpt.sectorSize)
  const align = BigInt(alignBytes)
  const lastLba = gpt.diskSectors - 1n
  // The smallest backup array the entries need (other tools may reserve less than newGpt's 16 KiB).
  const backupArrayLba = lastLba - BigInt(ceilDiv(gpt.entryCount * GPT_ENTRY_SIZE, gpt.sectorSize))
  if (gpt.lastUsableLba >= backupArrayLba) {
    problems.push({
      code: 'OUT_OF_RANGE',
      message: `LastUsableLBA ${gpt.lastUsableLba} runs into the backup entry array of a disk whose last LBA is ${lastLba}`,
    })
  }
  for (const p of gpt.partitions) {
    const where = `Partition ${p.number} (LBA ${p.firstLba}–${p.lastLba})`
    if (p.lastLba > lastLba) {
      problems.push({
        code: 'OUT_OF_RANGE',
        partition: p.number,
        message: `${where} ends past the disk's last LBA ${lastLba}`,
      })
    } else if (
      p.number < 1 ||
      p.number > gpt.entryCount ||
      p.firstLba < gpt.firstUsableLba ||
      p.lastLba > gpt.lastUsableLba ||
      p.lastLba < p.firstLba
    ) {
      problems.push({
        code: 'OUT_OF_RANGE',
        partition: p.number,
        message: `${where} is outside the usable LBAs ${gpt.firstUsableLba}–${gpt.lastUsableLba}`,
      })
    }
    // Only the start is checked: the end of a grown last partition is LastUsableLBA, never aligned.
    if (align > 0n && (p.firstLba * ss) % align !== 0n) {
      problems.push({
        code: 'MISALIGNED',
        partition: p.number,
        message: `Partition ${p.number} starts at LBA ${p.firstLba}, not on a ${alignBytes}-byte boundary`,
      })
    }
  }
  const sorted = [...gpt.partitions].sort((a, b) =>
    a.firstLba < b.firstLba ? -1 : a.firstLba > b.firstLba ? 1 : a.number - b.number,
  )
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!
    for (let j = i + 1; j < sorted.length && sorted[j]!.firstLba <= a.lastLba; j++) {
      const b = sorted[j]!
      problems.push({
        code: 'OVERLAP',
        partition: b.number,
        message: `Partition ${b.number} (LBA ${b.firstLba}–${b.lastLba}) overlaps partition ${a.number} (LBA ${a.firstLba}–${a.lastLba})`,
      })
    }
  }
  const seen = new Map<string, number>([[gpt.diskGuid.toUpperCase(), 0]])
  for (const p of gpt.partitions) {
    const g = p.uniqueGuid.toUpperCase()
    const other = seen.get(g)
    if (other !== undefined) {
      problems.push({
        code: 'DUPLICATE_GUID',
        partition: p.number,
        message: `Partition ${p.number} has the unique GUID "${g}" of ${other === 0 ? 'the disk' : `partition ${other}`}`,
      })
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
    throw new FormatError(
      'TARGET_TOO_SMALL',
      `Cannot resize GPT: expected a disk of at least ${minSectors} sectors, got ${diskSectors}`,
    )
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
 * unless neither copy is usable (then FormatError 'FORMAT_GPT'). The problems are about the copies
 * (damaged, missing, misplaced, disagreeing; the MBR); layout problems are validateGpt()'s.
 * `gpt.diskSectors` is the disk's real size (from `diskBytes`), even when the headers were written
 * for another size.
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
  if (diskSectors < 3n)
    throw fail(action, `expected a disk of at least 3 sectors of ${sectorSize} bytes, got ${diskBytes} bytes`)
  if (BigInt(tail.length) > diskBytes)
    throw fail(action, `expected at most ${diskBytes} bytes of disk tail, got ${tail.length}`)
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
      problems.push({
        code: 'MBR_NOT_PROTECTIVE',
        message: mbr.hybrid
          ? 'The MBR is a hybrid MBR, not a protective one'
          : 'The MBR has no protective 0xEE partition from LBA 1',
      })
    }
  } catch (e) {
    if (!(e instanceof FormatError)) throw e
    problems.push({ code: 'MBR_NOT_PROTECTIVE', message: e.message })
  }

  const primary = readCopy(1n)
  if (typeof primary === 'string')
    problems.push({ code: 'PRIMARY_DAMAGED', message: `Primary GPT is damaged: ${primary}` })
  let backupLba = lastLba
  if (typeof primary !== 'string' && primary.header.alternateLba !== lastLba) {
    backupLba = primary.header.alternateLba
    const where = `the primary header puts the backup at LBA ${backupLba}, the disk's last LBA is ${lastLba}`
    problems.push(
      backupLba > lastLba
        ? { code: 'BACKUP_MISSING', message: `Backup GPT is past the end of the disk: ${where}` }
        : { code: 'BACKUP_NOT_AT_END', message: `Backup GPT is not at the end of the disk: ${where}` },
    )
  }
  const backup = backupLba > lastLba ? `LBA ${backupLba} is past the end of the disk` : readCopy(backupLba)
  if (
    typeof backup === 'string' &&
    backupLba <= lastLba &&
    (backupLba === lastLba || typeof sectors(backupLba, 1n) !== 'string')
  ) {
    problems.push({ code: 'BACKUP_DAMAGED', message: `Backup GPT is damaged: ${backup}` })
  }
  const chosen = typeof primary !== 'string' ? primary : backup
  if (typeof chosen === 'string') {
    const other = sectorSize === 512 ? 4096 : 512
    const hint =
      head.length >= other + 8 && String.fromCharCode(...head.subarray(other, other + 8)) === GPT_SIGNATURE
        ? `The disk looks like it uses ${other}-byte sectors`
        : undefined
    throw new FormatError('FORMAT_GPT', `Cannot decode GPT: no usable copy (primary: ${primary}; backup: ${backup})`, {
      hint,
    })
  }
  if (typeof primary !== 'string' && typeof backup !== 'string') {
    const a = primary.header
    const b = backup.header
    const fields: string[] = (
      [
        'diskGuid',
        'firstUsableLba',
        'lastUsableLba',
        'numberOfPartitionEntries',
        'sizeOfPartitionEntry',
        'partitionEntryArrayCrc32',
      ] as const
    ).filter((k) => a[k] !== b[k])
    if (b.alternateLba !== a.myLba) fields.push('alternateLba')
    if (fields.length > 0)
      problems.push({
        code: 'HEADERS_DISAGREE',
        message: `Primary and backup GPT headers differ in ${fields.join(', ')}`,
      })
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
  return { gpt, primaryOk: typeof primary !== 'string', backupOk: typeof backup !== 'string', problems }
}
