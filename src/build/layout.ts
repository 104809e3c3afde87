// The image's partition layout (DESIGN.md "Image layout"): GPT on 512-byte sectors,
// 14 BIOS boot, 15 ESP, 1 root last so it can grow; every partition starts and ends
// on a 1 MiB boundary. Numbering follows Debian's and Ubuntu's cloud images.

import { InputError } from '../errors.js'

export const MiB = 1024 * 1024
export const SECTOR = 512

/** One planned partition, in bytes (all multiples of 1 MiB). */
export interface PlannedPartition {
  number: number
  name: string
  role: 'bios-boot' | 'esp' | 'root'
  offset: number
  size: number
}

/** The planned image: total size and its partitions in disk order. */
export interface ImageLayout {
  imageBytes: number
  /** Bytes of the root filesystem (≤ the root partition). */
  rootFsBytes: number
  partitions: PlannedPartition[]
}

export const BIOS_BOOT_BYTES = 4 * MiB
export const ESP_BYTES = 100 * MiB
/** First MiB: protective MBR, primary GPT, alignment gap. */
const HEAD_BYTES = MiB
/** Last MiB: the backup GPT (33 sectors) and the gap that keeps root's end aligned. */
const TAIL_BYTES = MiB
/** Bytes of every image that are not the root partition: the GPT head and tail, BIOS boot, ESP (106 MiB). */
export const FIXED_BYTES = HEAD_BYTES + BIOS_BOOT_BYTES + ESP_BYTES + TAIL_BYTES

/** How big a root filesystem must be for `contentBytes` of files in `inodes` inodes: ext4 overhead and headroom. */
export function fitRootFsBytes(contentBytes: number, inodes: number): number {
  // Data blocks + 256-byte inodes at one inode per 16 KiB (mke2fs's default ratio
  // sets the inode count from the size, so size for both) + journal (64 MiB for a
  // 1–2 GiB filesystem, ext2fs_default_journal_size) + 15% headroom for apt and
  // first boot. Rounded up to 64 MiB.
  const needed = Math.max(contentBytes * 1.15, inodes * 16384) + 64 * MiB + 96 * MiB
  return Math.ceil(needed / (64 * MiB)) * 64 * MiB
}

/**
 * Plans the layout. `size` is the image size or "fit"; `rootSize` the root
 * filesystem size, "fit" (content plus headroom) or "fill" (the whole root partition).
 * Throws InputError naming the field when the content does not fit.
 */
export function planLayout(opts: {
  size: number | 'fit'
  rootSize: number | 'fit' | 'fill'
  contentBytes: number
  inodes: number
}): ImageLayout {
  const fixed = FIXED_BYTES
  const fit = fitRootFsBytes(opts.contentBytes, opts.inodes)
  const wantedRoot = opts.rootSize === 'fit' || opts.rootSize === 'fill' ? fit : alignUp(opts.rootSize)
  if (typeof opts.rootSize === 'number' && opts.rootSize < fit) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid spec: field "root_size": ${mib(opts.rootSize)} is too small for the root filesystem's ${mib(fit)}`,
      {
        hint: `use at least ${Math.ceil(fit / MiB)}M, or "fit"`,
      },
    )
  }
  const imageBytes = opts.size === 'fit' ? fixed + wantedRoot : alignUp(opts.size)
  const rootPart = imageBytes - fixed
  if (rootPart < wantedRoot) {
    throw new InputError(
      'SPEC_INVALID',
      `Invalid spec: field "size": ${mib(imageBytes)} leaves ${mib(rootPart)} for root, which needs ${mib(wantedRoot)}`,
      {
        hint: `use at least ${Math.ceil((fixed + wantedRoot) / MiB)}M, or "fit"`,
      },
    )
  }
  const rootFsBytes = opts.rootSize === 'fill' ? rootPart : wantedRoot
  const biosOffset = HEAD_BYTES
  const espOffset = biosOffset + BIOS_BOOT_BYTES
  const rootOffset = espOffset + ESP_BYTES
  return {
    imageBytes,
    rootFsBytes,
    partitions: [
      { number: 14, name: 'bios', role: 'bios-boot', offset: biosOffset, size: BIOS_BOOT_BYTES },
      { number: 15, name: 'esp', role: 'esp', offset: espOffset, size: ESP_BYTES },
      { number: 1, name: 'root', role: 'root', offset: rootOffset, size: rootPart },
    ],
  }
}

/** `n` rounded up to a whole MiB, as the layout places partitions. */
export function alignUp(n: number): number {
  return Math.ceil(n / MiB) * MiB
}

function mib(n: number): string {
  return `${Math.round(n / MiB)} MiB`
}

/** The partition with a role; the layout always has one of each. */
export function partitionOf(layout: ImageLayout, role: PlannedPartition['role']): PlannedPartition {
  const p = layout.partitions.find((x) => x.role === role)
  if (!p) throw new Error(`layout has no ${role} partition`)
  return p
}
