// GPT partition entry array: UEFI 2.10 §5.3.3. All fields little-endian. An entry whose
// PartitionTypeGUID is zero is unused; names are 36 UTF-16LE code units, NUL-padded.

import { FormatError } from '../errors.js'
import { crc32 } from './crc32.js'
import { formatGuid, GUID_SIZE, GUID_ZERO, normalizeGuid, parseGuid } from './guid.js'
import { GPT_ENTRY_SIZE, GPT_MAX_ARRAY_BYTES, type GptHeader } from './gpt-header.js'

/** GPT partition entry fields (UEFI 2.10 Table 5-6). */
const EntOff = {
  PartitionTypeGUID: 0,
  UniquePartitionGUID: 16,
  StartingLBA: 32,
  EndingLBA: 40,
  Attributes: 48,
  PartitionName: 56,
} as const

/** Name field: 36 UTF-16LE code units, NUL-terminated if shorter. */
const NAME_UNITS = 36
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

const fail = (action: string, state: string): FormatError => new FormatError('FORMAT_GPT', `Cannot ${action}: ${state}`)
const hex32 = (n: number): string => `0x${n.toString(16).toUpperCase().padStart(8, '0')}`

/** Decodes the used slots of an entry array after checking its length and PartitionEntryArrayCRC32 against `h`. */
export function decodePartitionEntries(bytes: Uint8Array, h: GptHeader): GptPartition[] {
  const action = 'decode GPT partition entries'
  const size = h.sizeOfPartitionEntry
  const arrayBytes = h.numberOfPartitionEntries * size
  if (size < GPT_ENTRY_SIZE || arrayBytes > GPT_MAX_ARRAY_BYTES) {
    throw fail(
      action,
      `expected at most ${GPT_MAX_ARRAY_BYTES} bytes of entries of at least ${GPT_ENTRY_SIZE} bytes, got ${h.numberOfPartitionEntries} × ${size}`,
    )
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
    if (lastLba < firstLba)
      throw fail(action, `expected EndingLBA ≥ StartingLBA in partition ${i + 1}, got ${lastLba} < ${firstLba}`)
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
      uniqueGuid: formatGuid(
        bytes.subarray(e + EntOff.UniquePartitionGUID, e + EntOff.UniquePartitionGUID + GUID_SIZE),
      ),
      firstLba,
      lastLba,
      attributes: v.getBigUint64(e + EntOff.Attributes, true),
      name,
    })
  }
  return parts
}

/** Encodes partitions into an entry array of `entryCount` slots of `entrySize` bytes (unused slots zero). */
export function encodePartitionEntries(
  parts: GptPartition[],
  entryCount: number,
  entrySize = GPT_ENTRY_SIZE,
): Uint8Array {
  const action = 'encode GPT partition entries'
  if (!Number.isInteger(entrySize) || entrySize < GPT_ENTRY_SIZE || entrySize % GPT_ENTRY_SIZE !== 0) {
    throw fail(action, `expected an entry size that is a multiple of ${GPT_ENTRY_SIZE}, got ${entrySize}`)
  }
  if (!Number.isInteger(entryCount) || entryCount < 1 || entryCount * entrySize > GPT_MAX_ARRAY_BYTES) {
    throw fail(action, `expected 1 to ${GPT_MAX_ARRAY_BYTES / entrySize} entries, got ${entryCount}`)
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
    if (type === GUID_ZERO)
      throw fail(action, `expected a non-zero type GUID in partition ${p.number}, got "${p.typeGuid}"`)
    if (p.firstLba < 0n || p.lastLba < p.firstLba || p.lastLba > MAX_U64) {
      throw fail(
        action,
        `expected 0 ≤ StartingLBA ≤ EndingLBA in partition ${p.number}, got ${p.firstLba} and ${p.lastLba}`,
      )
    }
    if (p.attributes < 0n || p.attributes > MAX_U64)
      throw fail(action, `expected 64-bit attributes in partition ${p.number}, got ${p.attributes}`)
    if (p.name.length > NAME_UNITS || p.name.includes('\0')) {
      throw fail(
        action,
        `expected a name of at most ${NAME_UNITS} UTF-16 code units without NUL in partition ${p.number}, got ${JSON.stringify(p.name)}`,
      )
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
