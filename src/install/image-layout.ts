// What the image's first MiB says about it before anything is written: its partition
// table, the sector size it was made for (the primary GPT header sits at LBA 1: byte 512
// on a 512-byte-sector image, byte 4096 on a 4Kn one) and its size (the primary header's
// AlternateLBA is the image's last sector, UEFI 2.10 §5.3.2).

import { decodeGpt, decodeGptHeader, type Gpt, type GptProblem } from '../disk/gpt.js'
import { FormatError, InputError } from '../errors.js'

/** The first MiB: held back and written last. */
export const FIRST_MIB = 1 << 20

/** An image's layout as its first MiB shows it. */
export interface ImageLayout {
  /** Present when the image has a GPT. */
  gpt?: Gpt
  /** The sector size the image's GPT was made for; undefined without a GPT. */
  sectorSize?: 512 | 4096
  /** The image's size according to its GPT ((AlternateLBA + 1) × sector size). */
  gptImageSize?: number
  /** Problems of the primary table (the backup is checked after writing). */
  problems: GptProblem[]
}

const hasSignature = (b: Uint8Array, at: number): boolean =>
  b.length >= at + 8 && String.fromCharCode(...b.subarray(at, at + 8)) === 'EFI PART'

/** Reads the layout from the image's first bytes (at least 34 sectors; the first MiB in practice). */
export function readImageLayout(head: Uint8Array): ImageLayout {
  const sectorSize = hasSignature(head, 512) ? 512 : hasSignature(head, 4096) ? 4096 : undefined
  if (sectorSize === undefined) return { problems: [] }
  let header: ReturnType<typeof decodeGptHeader>
  try {
    header = decodeGptHeader(head.subarray(sectorSize, 2 * sectorSize))
  } catch (e) {
    if (e instanceof FormatError) {
      throw new FormatError('FORMAT_GPT', `Cannot read the image's partition table: ${e.message}`, {
        cause: e,
        hint: 'the image is damaged: download it again and check its SHA-256',
      })
    }
    throw e
  }
  const gptImageSize = Number((header.alternateLba + 1n) * BigInt(sectorSize))
  const { gpt, primaryOk, problems } = decodeGpt(head, new Uint8Array(0), BigInt(gptImageSize), sectorSize)
  if (!primaryOk)
    throw new FormatError(
      'FORMAT_GPT',
      `Cannot read the image's partition table: ${problems.map((p) => p.message).join('; ')}`,
    )
  // The tail was not given: the backup is checked once it is on the target.
  const own = problems.filter((p) => !p.code.startsWith('BACKUP_'))
  return { gpt, sectorSize, gptImageSize, problems: own }
}

/** Refuses an image made for one logical sector size on a target with another. */
export function assertSectorSizes(image: ImageLayout, targetSectorSize: number, targetPath: string): void {
  if (image.sectorSize === undefined || image.sectorSize === targetSectorSize) return
  throw new InputError(
    'SECTOR_SIZE_MISMATCH',
    `Cannot install onto "${targetPath}": the image is made for ${image.sectorSize}-byte sectors, the disk has ${targetSectorSize}-byte logical sectors`,
    {
      hint:
        image.sectorSize === 512
          ? 'its partition table would be read at the wrong offsets on this 4Kn disk and nothing would boot: use an image built for 4096-byte sectors'
          : 'use an image built for 512-byte sectors',
    },
  )
}
