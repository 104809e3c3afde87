// An image's format from its first bytes, never from its name (a ".img" can be a qcow2,
// a download can lose its extension). Magic numbers from each format's specification:
// zstd RFC 8878 §3.1.1 (and skippable frames §3.1.2), xz file format 1.1.0 §2.1.1.1,
// gzip RFC 1952 §2.3.1, qcow2 docs/interop/qcow2.txt ("QFI\xfb").

import { InputError } from '../errors.js'

/** What the installer can read. */
export type ImageFormat = 'raw' | 'zstd' | 'xz' | 'gzip' | 'qcow2'

/** Bytes detectFormat() wants to see (fewer is fine for a short source). */
export const MAGIC_BYTES = 8

const startsWith = (b: Uint8Array, magic: readonly number[]): boolean => b.length >= magic.length && magic.every((m, i) => b[i] === m)

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
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd'
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
