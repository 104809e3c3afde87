// GRUB's BIOS boot code (GRUB 2.06, i386-pc), placed without grub-bios-setup:
// boot.img goes into the MBR's boot-code area and must know the LBA of core.img;
// core.img's first sector (diskboot.img) carries a blocklist saying where the rest
// of core.img is. Offsets from grub-core/boot/i386/pc/boot.S and diskboot.S
// (include/grub/i386/pc/boot.h); grub-bios-setup (util/setup.c) patches the same fields.
// Reed-Solomon redundancy is not added (as `grub-install --no-rs-codes`).

import { FormatError } from '../errors.js'

const SECTOR = 512

/** boot.img fields (boot.h). */
const BootOff = {
  kernelSector: 0x5c, // GRUB_BOOT_MACHINE_KERNEL_SECTOR: u64 LBA of core.img's first sector
  bootDrive: 0x64, // GRUB_BOOT_MACHINE_BOOT_DRIVE: 0xff = use the drive the BIOS passed in DL
  driveCheck: 0x66, // GRUB_BOOT_MACHINE_DRIVE_CHECK: a 2-byte jmp, replaced by NOPs for hard disks
  signature: 0x1fe, // 0xAA55
} as const

/** diskboot.img's default blocklist entry: the last 12 bytes of core.img's first sector. */
const BlockOff = {
  start: SECTOR - 12, // u64 LBA where the rest of core.img starts
  len: SECTOR - 4, // u16 sectors, filled in by grub-mkimage
  segment: SECTOR - 2, // u16 load segment (0x820)
} as const

/** The MBR's boot-code area (before the disk signature and partition table). */
export const MBR_BOOT_CODE_BYTES = 440

/** boot.img patched to load core.img from `coreLba`: the 440 bytes for the protective MBR. */
export function patchBootImage(bootImg: Uint8Array, coreLba: bigint): Uint8Array {
  if (bootImg.length !== SECTOR)
    throw new FormatError('FORMAT_IMAGE', `Cannot use boot.img: expected ${SECTOR} bytes, got ${bootImg.length}`)
  const sig = new DataView(bootImg.buffer, bootImg.byteOffset, bootImg.byteLength).getUint16(BootOff.signature, true)
  if (sig !== 0xaa55)
    throw new FormatError(
      'FORMAT_IMAGE',
      `Cannot use boot.img: boot signature is 0x${sig.toString(16)}, expected 0xaa55`,
    )
  const out = new Uint8Array(bootImg.subarray(0, MBR_BOOT_CODE_BYTES))
  const v = new DataView(out.buffer)
  v.setBigUint64(BootOff.kernelSector, coreLba, true)
  out[BootOff.bootDrive] = 0xff
  // grub-bios-setup does this for any non-floppy target: some BIOSes pass a bogus DL.
  out[BootOff.driveCheck] = 0x90
  out[BootOff.driveCheck + 1] = 0x90
  return out
}

/** core.img patched so that its first sector loads the rest from `coreLba + 1`. */
export function patchCoreImage(coreImg: Uint8Array, coreLba: bigint): Uint8Array {
  if (coreImg.length < 2 * SECTOR)
    throw new FormatError('FORMAT_IMAGE', `Cannot use core.img: ${coreImg.length} bytes is too short`)
  const out = new Uint8Array(coreImg)
  const v = new DataView(out.buffer)
  const len = v.getUint16(BlockOff.len, true)
  const sectors = Math.ceil(coreImg.length / SECTOR)
  if (len !== sectors - 1) {
    throw new FormatError(
      'FORMAT_IMAGE',
      `Cannot use core.img: its blocklist says ${len} sectors follow, the file has ${sectors - 1}`,
      {
        hint: 'core.img must come from grub-mkimage -O i386-pc with diskboot.img',
      },
    )
  }
  v.setBigUint64(BlockOff.start, coreLba + 1n, true)
  return out
}
