// A GPT re-encoded for another logical sector size: UEFI 2.10 §5.3.1 counts every LBA in
// the disk's logical blocks, so a table made for 512-byte sectors is read at the wrong
// offsets on a 4096-byte-sector (4Kn) disk. Partitions keep their byte offsets; only the
// LBAs that name them change. The usable range and the disk's size follow the new
// sector size (the entry arrays take 4 sectors of 4 KiB instead of 32 of 512 bytes).

import { FormatError } from '../errors.js'
import { entryArraySectors, type Gpt, type GptPartition } from './gpt.js'

/** A partition whose end was moved down to the new sector boundary (its last bytes are outside the new table). */
export interface TrimmedPartition {
  number: number
  /** Bytes that no longer belong to it (less than one new sector). */
  bytes: number
}

/** The converted table, and the partitions whose end did not fall on a new sector boundary. */
export interface ConvertedGpt {
  gpt: Gpt
  trimmed: TrimmedPartition[]
}

/**
 * Re-encodes `gpt` in LBAs of `sectorSize` bytes, for a disk of the same size in bytes
 * (resizeGpt() then makes it the real disk's). Every
 * partition must start on a new sector boundary (FORMAT_GPT otherwise: its data would
 * start inside a sector). An end not on a boundary is moved down to one and listed in
 * `trimmed` (the last partition of an image often ends at LastUsableLBA, 33 sectors
 * before the end: ext4 with 4 KiB blocks never uses a partial 4 KiB block there).
 */
export function convertGptSectorSize(gpt: Gpt, sectorSize: number): ConvertedGpt {
  const from = BigInt(gpt.sectorSize)
  const to = BigInt(sectorSize)
  if (sectorSize !== 512 && sectorSize !== 4096)
    throw new FormatError('FORMAT_GPT', `Cannot convert GPT: expected 512- or 4096-byte sectors, got ${sectorSize}`)
  const trimmed: TrimmedPartition[] = []
  const partitions: GptPartition[] = gpt.partitions.map((p) => {
    const start = p.firstLba * from
    const end = (p.lastLba + 1n) * from
    if (start % to !== 0n)
      throw new FormatError(
        'FORMAT_GPT',
        `Cannot convert GPT to ${sectorSize}-byte sectors: partition ${p.number} starts at byte ${start}, not on a ${sectorSize}-byte boundary`,
        { hint: 'use an image whose partitions are 1 MiB aligned, or one built for this sector size' },
      )
    const newEnd = (end / to) * to
    if (newEnd <= start)
      throw new FormatError(
        'FORMAT_GPT',
        `Cannot convert GPT to ${sectorSize}-byte sectors: partition ${p.number} (${end - start} bytes) is smaller than one sector`,
      )
    if (newEnd !== end) trimmed.push({ number: p.number, bytes: Number(end - newEnd) })
    return { ...p, firstLba: start / to, lastLba: newEnd / to - 1n }
  })
  const diskSectors = (gpt.diskSectors * from) / to
  const array = BigInt(entryArraySectors(gpt.entryCount, sectorSize))
  // The usable range as the new entry arrays leave it (4 sectors of 4 KiB each for 128 entries).
  const firstUsableLba = 2n + array
  const lastUsableLba = diskSectors - 2n - array
  for (const p of partitions) {
    if (p.firstLba < firstUsableLba || p.lastLba > lastUsableLba)
      throw new FormatError(
        'FORMAT_GPT',
        `Cannot convert GPT to ${sectorSize}-byte sectors: partition ${p.number} (bytes ${p.firstLba * to}–${(p.lastLba + 1n) * to - 1n}) overlaps where the ${sectorSize}-byte entry arrays go`,
      )
  }
  return {
    gpt: {
      ...gpt,
      sectorSize,
      diskSectors,
      firstUsableLba,
      lastUsableLba,
      partitions,
    },
    trimmed,
  }
}
