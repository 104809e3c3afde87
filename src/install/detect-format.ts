// An image's format from its first bytes, never from its name (a ".img" can be a qcow2,
// a download can lose its extension). Magic numbers from each format's specification:
// zstd RFC 8878 §3.1.1 (and skippable frames §3.1.2), xz file format 1.1.0 §2.1.1.1,
// gzip RFC 1952 §2.3.1, qcow2 docs/interop/qcow2.txt ("QFI\xfb").

import { InputError } from '../errors.js'

/** What the installer can read. */
export type ImageFormat = 'raw' | 'zstd' | 'xz' | 'gzip' | 'qcow2'

/** Bytes detectFormat() wants to see (fewer is fine for a short source). */
export const MAGIC_BYTES = 8

const startsWith = (b: Uint8Array, magic: readonly number[]): boolean =>
  b.length >= magic.length && magic.every((m, i) => b[i] === m)

// Formats we recognise but do not read: refusing them beats writing their bytes as a raw disk.
const UNSUPPORTED: ReadonlyArray<{ name: string; magic: readonly number[] }> = [
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68] },
  { name: 'lz4', magic: [0x04, 0x22, 0x4d, 0x18] },
  { name: 'VMDK', magic: [0x4b, 0x44, 0x4d, 0x56] },
  { name: 'VHD', magic: [0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78] },
  { name: 'VHDX', magic: [0x76, 0x68, 0x64, 0x78, 0x66, 0x69, 0x6c, 0x65] },
  { name: 'zip', magic: [0x50, 0x4b, 0x03, 0x04] },
]

/** The format of an image from its first bytes; anything unrecognised is raw. Throws for formats we know but do not read. */
export function detectFormat(head: Uint8Array): ImageFormat {
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd'
  // Skippable frame 0x184D2A5? (little-endian): zstd -dc passes over it to the real frames.
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18)
    return 'zstd'
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz'
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip'
  if (startsWith(head, [0x51, 0x46, 0x49, 0xfb])) return 'qcow2'
  for (const u of UNSUPPORTED) {
    if (startsWith(head, u.magic)) {
      throw new InputError('FORMAT_IMAGE', `Cannot read image: it is ${u.name}, which the installer does not read`, {
        hint: 'give a raw image, or one compressed with zstd, xz or gzip, or a qcow2',
      })
    }
  }
  return 'raw'
}

// What a disk image's first MiB holds at fixed offsets (libblkid's probes use the same):
// a boot sector or MBR (0x55AA at 510: also GPT's protective MBR, FAT, NTFS, hybrid ISOs),
// a GPT header at LBA 1, or a whole-disk file system's superblock.
const DISK_SIGNATURES: ReadonlyArray<{ what: string; at: number; bytes: readonly number[] }> = [
  { what: 'a boot sector', at: 510, bytes: [0x55, 0xaa] },
  { what: 'a GPT', at: 512, bytes: [...'EFI PART'].map((c) => c.charCodeAt(0)) },
  { what: 'a GPT (4096-byte sectors)', at: 4096, bytes: [...'EFI PART'].map((c) => c.charCodeAt(0)) },
  { what: 'an ext2/3/4 file system', at: 1080, bytes: [0x53, 0xef] },
  { what: 'an XFS file system', at: 0, bytes: [...'XFSB'].map((c) => c.charCodeAt(0)) },
  { what: 'a btrfs file system', at: 65600, bytes: [...'_BHRfS_M'].map((c) => c.charCodeAt(0)) },
  { what: 'an ISO 9660 file system', at: 32769, bytes: [...'CD001'].map((c) => c.charCodeAt(0)) },
  { what: 'a LUKS volume', at: 0, bytes: [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe] },
  { what: 'an LVM physical volume', at: 536, bytes: [...'LVM2 001'].map((c) => c.charCodeAt(0)) },
  { what: 'a squashfs file system', at: 0, bytes: [...'hsqs'].map((c) => c.charCodeAt(0)) },
]

const has = (b: Uint8Array, at: number, bytes: readonly number[]): boolean =>
  b.length >= at + bytes.length && bytes.every((x, i) => b[at + i] === x)

/** What a file that is not a disk image is, in words, from its first bytes. */
export function describeData(head: Uint8Array): string {
  if (head.length === 0) return 'empty'
  if (head.every((b) => b === 0)) return `all zeros in its first ${head.length} bytes`
  if (has(head, 0, [0x7f, 0x45, 0x4c, 0x46])) return 'an ELF executable or library'
  if (
    has(
      head,
      0,
      [...'%PDF'].map((c) => c.charCodeAt(0)),
    )
  )
    return 'a PDF document'
  if (
    has(
      head,
      257,
      [...'ustar'].map((c) => c.charCodeAt(0)),
    )
  )
    return 'a tar archive'
  const sample = head.subarray(0, 4096)
  const text = sample.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b !== 127))
  if (text) {
    const start = new TextDecoder().decode(sample.subarray(0, 40)).replace(/\s+/g, ' ').trim()
    const kind = /^[[{]/.test(start)
      ? 'JSON text'
      : /^<\?xml|^</.test(start)
        ? 'XML or HTML text'
        : /^#!/.test(start)
          ? 'a script'
          : 'text'
    return `${kind} (it starts "${start}")`
  }
  return 'data with no partition table, boot sector or file-system signature'
}

/**
 * Whether an uncompressed image looks like a disk image: a partition table, a boot sector or
 * a whole-disk file system in its first MiB, and (when known) a size in whole 512-byte
 * sectors. Returns undefined when it does, else what it looks like instead.
 */
export function notADiskImage(head: Uint8Array, size: number | undefined): string | undefined {
  if (!DISK_SIGNATURES.some((s) => has(head, s.at, s.bytes))) return describeData(head)
  if (size !== undefined && size % 512 !== 0) return `${size} bytes, not a whole number of 512-byte sectors`
  return undefined
}
