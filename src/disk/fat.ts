// FAT boot sector (BPB): Microsoft "FAT: General Overview of On-Disk Format" 1.03, §3.
// All fields little-endian. Decode only: hwimage makes FAT file systems with mkfs.vfat,
// and reads their geometry, volume id and label to make the same volume again with
// another sector size. The FAT type is decided by the count of data clusters alone (§3.5:
// fewer than 4085 is FAT12, fewer than 65525 FAT16, else FAT32), never by the type string.

import { FormatError } from '../errors.js'

/** BPB and extended boot record fields (§3.1–3.3), in the spec's names. */
const Off = {
  BPB_BytsPerSec: 11,
  BPB_SecPerClus: 13,
  BPB_RsvdSecCnt: 14,
  BPB_NumFATs: 16,
  BPB_RootEntCnt: 17,
  BPB_TotSec16: 19,
  BPB_FATSz16: 22,
  BPB_TotSec32: 32,
  BPB_FATSz32: 36,
  /** FAT12/16 (§3.2). */
  BS_VolID16: 39,
  BS_VolLab16: 43,
  /** FAT32 (§3.3). */
  BS_VolID32: 67,
  BS_VolLab32: 71,
  Signature: 510,
} as const
const SIGNATURE = 0xaa55
const LABEL_BYTES = 11
/** Cluster counts at which FAT16 and FAT32 begin (§3.5). */
export const FAT16_MIN_CLUSTERS = 4085
export const FAT32_MIN_CLUSTERS = 65525

/** What a FAT boot sector says about its volume. */
export interface FatBootSector {
  bytesPerSector: number
  sectorsPerCluster: number
  totalSectors: number
  /** Data clusters (§3.5's CountofClusters). */
  clusters: number
  fatBits: 12 | 16 | 32
  /** BS_VolID as 8 upper-case hex digits ("1A2B3C4D"; shown as 1A2B-3C4D). */
  volumeId: string
  /** BS_VolLab, trailing spaces removed; undefined for "NO NAME" or blank. */
  label: string | undefined
}

const fail = (state: string): FormatError => new FormatError('FORMAT_FAT', `Cannot decode FAT boot sector: ${state}`)

/** Decodes a FAT boot sector (the first 512 bytes of the volume suffice). */
export function decodeFatBootSector(bytes: Uint8Array): FatBootSector {
  if (bytes.length < 512) throw fail(`expected at least 512 bytes, got ${bytes.length}`)
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const signature = v.getUint16(Off.Signature, true)
  if (signature !== SIGNATURE) throw fail(`expected signature 0xAA55 at byte 510, got 0x${signature.toString(16)}`)
  const bytesPerSector = v.getUint16(Off.BPB_BytsPerSec, true)
  if (![512, 1024, 2048, 4096].includes(bytesPerSector))
    throw fail(`expected 512, 1024, 2048 or 4096 bytes per sector, got ${bytesPerSector}`)
  const sectorsPerCluster = v.getUint8(Off.BPB_SecPerClus)
  if (sectorsPerCluster === 0 || (sectorsPerCluster & (sectorsPerCluster - 1)) !== 0)
    throw fail(`expected a power of two sectors per cluster, got ${sectorsPerCluster}`)
  const reserved = v.getUint16(Off.BPB_RsvdSecCnt, true)
  const fats = v.getUint8(Off.BPB_NumFATs)
  const rootEntries = v.getUint16(Off.BPB_RootEntCnt, true)
  const fatSize = v.getUint16(Off.BPB_FATSz16, true) || v.getUint32(Off.BPB_FATSz32, true)
  const totalSectors = v.getUint16(Off.BPB_TotSec16, true) || v.getUint32(Off.BPB_TotSec32, true)
  if (reserved === 0 || fats === 0 || fatSize === 0 || totalSectors === 0)
    throw fail(
      `expected non-zero reserved sectors, FAT count, FAT size and total sectors, got ${reserved}, ${fats}, ${fatSize}, ${totalSectors}`,
    )
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector)
  const dataSectors = totalSectors - (reserved + fats * fatSize + rootSectors)
  if (dataSectors <= 0) throw fail(`the FATs and root directory take all ${totalSectors} sectors`)
  const clusters = Math.floor(dataSectors / sectorsPerCluster)
  const fatBits = clusters < FAT16_MIN_CLUSTERS ? 12 : clusters < FAT32_MIN_CLUSTERS ? 16 : 32
  // Where the extended boot record sits follows the BPB's shape (FATSz16 = 0 on FAT32), which
  // a FAT32 volume with too few clusters keeps even though its type by count is FAT16.
  const fat32Layout = v.getUint16(Off.BPB_FATSz16, true) === 0
  const volumeId = v
    .getUint32(fat32Layout ? Off.BS_VolID32 : Off.BS_VolID16, true)
    .toString(16)
    .toUpperCase()
    .padStart(8, '0')
  const at = fat32Layout ? Off.BS_VolLab32 : Off.BS_VolLab16
  const text = String.fromCharCode(...bytes.subarray(at, at + LABEL_BYTES)).replace(/[\0 ]+$/, '')
  const label = text === '' || text === 'NO NAME' ? undefined : text
  return { bytesPerSector, sectorsPerCluster, totalSectors, clusters, fatBits, volumeId, label }
}

/**
 * The FAT type a volume of `sizeBytes` gets with one `sectorSize`-byte sector per cluster
 * (mkfs.vfat -s 1): FAT32 when its clusters reach 65525, else FAT16 from 4085, else FAT12.
 * Counted as mkfs.fat 4.2 lays the volume out (FAT32: 32 reserved sectors; FAT12/16: a
 * reserved area and a 512-entry root directory of at most 16 KiB each), two FATs.
 */
export function fatBitsFor(sizeBytes: number, sectorSize: number): 12 | 16 | 32 {
  const sectors = Math.floor(sizeBytes / sectorSize)
  const fat32Sectors = Math.ceil(((sectors + 2) * 4) / sectorSize)
  if (sectors - 32 - 2 * fat32Sectors >= FAT32_MIN_CLUSTERS) return 32
  const small = Math.ceil(16384 / sectorSize)
  const fat16Sectors = Math.ceil(((sectors + 2) * 2) / sectorSize)
  return sectors - 2 * small - 2 * fat16Sectors >= FAT16_MIN_CLUSTERS ? 16 : 12
}
