// ext2/3/4 superblock: the kernel's Documentation/filesystems/ext4/super.rst. All fields
// little-endian; the superblock starts 1024 bytes into the file system. Decode only, and
// only what the installer asks of a file system it moves to another disk: its block size
// (Linux mounts no ext4 whose blocks are smaller than the disk's logical sectors) and size.

import { FormatError } from '../errors.js'

/** The superblock's offset in the file system. */
export const EXT_SUPERBLOCK_OFFSET = 1024

/** Fields of struct ext4_super_block, in the kernel's names. */
const Off = {
  s_blocks_count_lo: 0x4,
  s_log_block_size: 0x18,
  s_magic: 0x38,
  s_feature_incompat: 0x60,
  s_blocks_count_hi: 0x150,
} as const
const EXT_MAGIC = 0xef53
const INCOMPAT_64BIT = 0x80
const SUPERBLOCK_BYTES = 1024

/** What the installer needs of an ext2/3/4 superblock. */
export interface ExtSuperblock {
  blockSize: number
  blocksCount: bigint
  /** blockSize × blocksCount: the bytes the file system spans. */
  sizeBytes: bigint
}

/** Whether `bytes` (the file system's first 2 KiB) holds an ext2/3/4 superblock magic. */
export function isExtFilesystem(bytes: Uint8Array): boolean {
  if (bytes.length < EXT_SUPERBLOCK_OFFSET + SUPERBLOCK_BYTES) return false
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return v.getUint16(EXT_SUPERBLOCK_OFFSET + Off.s_magic, true) === EXT_MAGIC
}

/** Decodes the superblock from the file system's first 2 KiB. */
export function decodeExtSuperblock(bytes: Uint8Array): ExtSuperblock {
  if (bytes.length < EXT_SUPERBLOCK_OFFSET + SUPERBLOCK_BYTES)
    throw new FormatError(
      'FORMAT_IMAGE',
      `Cannot decode ext4 superblock: expected ${EXT_SUPERBLOCK_OFFSET + SUPERBLOCK_BYTES} bytes, got ${bytes.length}`,
    )
  const v = new DataView(bytes.buffer, bytes.byteOffset + EXT_SUPERBLOCK_OFFSET, SUPERBLOCK_BYTES)
  const magic = v.getUint16(Off.s_magic, true)
  if (magic !== EXT_MAGIC)
    throw new FormatError(
      'FORMAT_IMAGE',
      `Cannot decode ext4 superblock: expected magic 0xEF53, got 0x${magic.toString(16).toUpperCase()}`,
    )
  const log = v.getUint32(Off.s_log_block_size, true)
  if (log > 6)
    throw new FormatError('FORMAT_IMAGE', `Cannot decode ext4 superblock: s_log_block_size ${log} is out of range`)
  const blockSize = 1024 << log
  const hi =
    (v.getUint32(Off.s_feature_incompat, true) & INCOMPAT_64BIT) !== 0 ? v.getUint32(Off.s_blocks_count_hi, true) : 0
  const blocksCount = (BigInt(hi) << 32n) | BigInt(v.getUint32(Off.s_blocks_count_lo, true))
  return { blockSize, blocksCount, sizeBytes: blocksCount * BigInt(blockSize) }
}
