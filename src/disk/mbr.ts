// Master Boot Record: UEFI 2.10 §5.2.1 (legacy MBR) and §5.2.3 (protective MBR). All fields
// little-endian. A protective MBR holds one partition of type 0xEE from LBA 1 over the whole
// disk (capped at 2^32-1 sectors), so MBR-only tools see the disk as in use. The first 440
// bytes stay free for BIOS boot code (GRUB's boot.img); the structure is the same 512 bytes
// on 4096-byte-sector disks, the rest of LBA 0 is zero.

import { FormatError } from '../errors.js'

/** Offsets in the MBR (UEFI 2.10 Table 5-1 / 5-3). */
const Off = { BootCode: 0, UniqueMBRDiskSignature: 440, Unknown: 444, PartitionRecord: 446, Signature: 510 } as const
/** Offsets in one 16-byte partition record (UEFI 2.10 Table 5-2 / 5-4). */
const RecOff = { BootIndicator: 0, StartingCHS: 1, OSType: 4, EndingCHS: 5, StartingLBA: 8, SizeInLBA: 12 } as const

/** Size of the MBR structure in bytes, whatever the sector size. */
export const MBR_SIZE = 512
/** Bytes of boot code before the disk signature (what GRUB's boot.img contributes). */
export const MBR_BOOT_CODE_SIZE = 440
/** The 0xAA55 signature at offset 510 (bytes 55 AA on disk). */
export const MBR_SIGNATURE = 0xaa55
/** OSType of the partition that protects a GPT disk. */
export const MBR_TYPE_GPT_PROTECTIVE = 0xee
const RECORD_SIZE = 16
const RECORD_COUNT = 4
const BOOTABLE = 0x80
const MAX_U32 = 0xffff_ffffn
// CHS as BIOSes and sgdisk compute it: 255 heads, 63 sectors per track, at most 1024 cylinders.
const CHS_HEADS = 255
const CHS_SECTORS = 63
const CHS_MAX_CYLINDER = 1023
const CHS_UNREPRESENTABLE = [0xff, 0xff, 0xff] as const

/** One non-empty MBR partition record. */
export interface MbrPartition {
  /** 1-based slot (1–4). */
  number: number
  bootable: boolean
  /** OSType byte, e.g. 0xEE (GPT protective), 0x83 (Linux), 0xEF (EFI). */
  type: number
  firstLba: bigint
  sectors: bigint
}

/** A decoded MBR. */
export interface Mbr {
  /** The first 440 bytes (boot code), copied. */
  bootCode: Uint8Array
  /** The 32-bit Unique MBR Disk Signature at offset 440 (fdisk's "Disk identifier"). */
  diskSignature: number
  /** Non-empty partition records only. */
  partitions: MbrPartition[]
  /** Exactly one record, type 0xEE, starting at LBA 1: a GPT protective MBR as UEFI 2.10 §5.2.3 defines it. */
  protective: boolean
  /** A 0xEE record alongside other records: a hybrid MBR (UEFI firmware still treats the disk as GPT). */
  hybrid: boolean
}

/** The 3-byte CHS address of an LBA (cylinder bits 8–9 in the top of the sector byte), or FF FF FF past cylinder 1023. */
function chsOf(lba: bigint): readonly [number, number, number] {
  const perCylinder = BigInt(CHS_HEADS * CHS_SECTORS)
  const cylinder = lba / perCylinder
  if (cylinder > BigInt(CHS_MAX_CYLINDER)) return CHS_UNREPRESENTABLE
  const c = Number(cylinder)
  const rest = Number(lba % perCylinder)
  const head = Math.floor(rest / CHS_SECTORS)
  const sector = (rest % CHS_SECTORS) + 1
  return [head, sector | ((c >> 2) & 0xc0), c & 0xff]
}

/**
 * A protective MBR for a disk of `sectors` logical blocks; `bootCode` (e.g. GRUB's boot.img)
 * contributes its first 440 bytes. Returns 512 bytes.
 */
export function encodeProtectiveMbr(sectors: bigint, bootCode?: Uint8Array): Uint8Array {
  if (sectors < 2n) {
    throw new FormatError(
      'FORMAT_MBR',
      `Cannot encode protective MBR: expected a disk of at least 2 sectors, got ${sectors}`,
    )
  }
  const out = new Uint8Array(MBR_SIZE)
  if (bootCode) out.set(bootCode.subarray(0, MBR_BOOT_CODE_SIZE), Off.BootCode)
  const v = new DataView(out.buffer)
  const p = Off.PartitionRecord
  const last = sectors - 1n
  out[p + RecOff.BootIndicator] = 0
  out.set(chsOf(1n), p + RecOff.StartingCHS) // 0x000200, as §5.2.3 requires
  out[p + RecOff.OSType] = MBR_TYPE_GPT_PROTECTIVE
  out.set(chsOf(last), p + RecOff.EndingCHS)
  v.setUint32(p + RecOff.StartingLBA, 1, true)
  v.setUint32(p + RecOff.SizeInLBA, Number(last > MAX_U32 ? MAX_U32 : last), true)
  v.setUint16(Off.Signature, MBR_SIGNATURE, true)
  return out
}

/** Decodes an MBR from the first 512 (or more) bytes of a disk; checks length, signature and boot indicators. */
export function decodeMbr(bytes: Uint8Array): Mbr {
  if (bytes.length < MBR_SIZE) {
    throw new FormatError('FORMAT_MBR', `Cannot decode MBR: expected at least ${MBR_SIZE} bytes, got ${bytes.length}`)
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, MBR_SIZE)
  const signature = v.getUint16(Off.Signature, true)
  if (signature !== MBR_SIGNATURE) {
    throw new FormatError(
      'FORMAT_MBR',
      `Cannot decode MBR: expected signature 0x${MBR_SIGNATURE.toString(16).toUpperCase()}, got 0x${signature.toString(16).toUpperCase().padStart(4, '0')}`,
    )
  }
  const partitions: MbrPartition[] = []
  for (let i = 0; i < RECORD_COUNT; i++) {
    const r = Off.PartitionRecord + i * RECORD_SIZE
    const boot = bytes[r + RecOff.BootIndicator]!
    // Linux's msdos parser refuses the same: anything but 0x00/0x80 is not a partition table.
    if (boot !== 0 && boot !== BOOTABLE) {
      throw new FormatError(
        'FORMAT_MBR',
        `Cannot decode MBR: expected boot indicator 0x00 or 0x80 in partition ${i + 1}, got 0x${boot.toString(16).padStart(2, '0')}`,
      )
    }
    const type = bytes[r + RecOff.OSType]!
    const firstLba = BigInt(v.getUint32(r + RecOff.StartingLBA, true))
    const sectors = BigInt(v.getUint32(r + RecOff.SizeInLBA, true))
    // An OSType of 0 marks an unused record (UEFI 2.10 Table 5-2).
    if (type === 0) continue
    partitions.push({ number: i + 1, bootable: boot === BOOTABLE, type, firstLba, sectors })
  }
  const gpt = partitions.filter((p) => p.type === MBR_TYPE_GPT_PROTECTIVE)
  const protective = partitions.length === 1 && gpt.length === 1 && gpt[0]!.firstLba === 1n
  return {
    bootCode: new Uint8Array(bytes.subarray(Off.BootCode, Off.BootCode + MBR_BOOT_CODE_SIZE)),
    diskSignature: v.getUint32(Off.UniqueMBRDiskSignature, true),
    partitions,
    protective,
    hybrid: gpt.length > 0 && partitions.length > gpt.length,
  }
}
