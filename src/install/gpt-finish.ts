// The image's GPT made for the real disk: the backup table moves to the disk's last
// sectors and LastUsableLBA follows it (so growpart can grow the last partition on first
// boot), the protective MBR covers the whole disk. The new primary copy is patched into
// the image's own first MiB rather than regenerated: the MBR's first 446 bytes (GRUB's
// boot.img, which points at core.img by LBA, and the disk signature) and everything after
// the primary entry array stay exactly as the image has them.

import { encodeGpt, entryArraySectors, resizeGpt, type Gpt } from '../disk/gpt.js'
import { MBR_SIZE } from '../disk/mbr.js'
import { InputError } from '../errors.js'

/** The partition records and signature of LBA 0 (UEFI 2.10 Table 5-1): what a resize changes in the MBR. */
const MBR_RECORDS_OFFSET = 446

/** What to write for the disk's partition table. */
export interface FinishedGpt {
  /** The table as it now is (resized, plus anything a step before the first MiB added). */
  gpt: Gpt
  /** The image's first MiB with the new protective MBR records, primary header and entries. */
  firstMiB: Uint8Array
  /** The backup entry array and header … */
  backup: Uint8Array
  /** … and the byte offset they go to (the disk's last sectors). */
  backupOffset: number
}

/** The image's table resized to a disk of `diskBytes` (fails with TARGET_TOO_SMALL if a partition would not fit). */
export function resizeForDisk(gpt: Gpt, diskBytes: number): Gpt {
  const sectors = BigInt(Math.floor(diskBytes / gpt.sectorSize))
  try {
    return resizeGpt(gpt, sectors)
  } catch (e) {
    if (e instanceof InputError && e.code === 'TARGET_TOO_SMALL') {
      throw new InputError(
        'TARGET_TOO_SMALL',
        `Cannot fit the image's partitions on a disk of ${diskBytes} bytes: ${e.message}`,
        { cause: e },
      )
    }
    throw e
  }
}

/**
 * Encodes `gpt` and patches it into a copy of the image's first MiB. `imageGpt`, the
 * image's own table, matters when it was made for another sector size (a 4Kn disk): its
 * primary header and entry array are zeroed first, so no second, stale table is left for
 * a tool that looks at the image's offsets.
 */
export function patchFirstMiB(imageFirstMiB: Uint8Array, gpt: Gpt, imageGpt?: Gpt): FinishedGpt {
  const { primary, backup, backupOffset } = encodeGpt(gpt)
  const ss = gpt.sectorSize
  if (primary.length > imageFirstMiB.length)
    throw new InputError(
      'FORMAT_GPT',
      `Cannot write the partition table: it needs ${primary.length} bytes, more than the ${imageFirstMiB.length} held back`,
    )
  const firstMiB = new Uint8Array(imageFirstMiB)
  if (imageGpt && imageGpt.sectorSize !== ss) {
    const old = imageGpt.sectorSize
    firstMiB.fill(0, old, Math.min(firstMiB.length, old * (2 + entryArraySectors(imageGpt.entryCount, old))))
  }
  firstMiB.set(primary.subarray(MBR_RECORDS_OFFSET, MBR_SIZE), MBR_RECORDS_OFFSET)
  firstMiB.set(primary.subarray(ss), ss)
  return { gpt, firstMiB, backup, backupOffset: Number(backupOffset) }
}
