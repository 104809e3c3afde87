// Devices QEMU emulates too loosely for a Linux guest to use, whatever the image:
// booting them measures QEMU, not the image. Cells on them are "not applicable"
// with the reason below unless the run asks for them (`hwimage test --run-gaps`),
// so a newer QEMU or kernel can be checked again. Each entry was seen on a real run
// (docs/hardware-lab.md, "Emulation gaps").

import type { StorageDevice } from '../tools/qemu-devices.js'

// QEMU 7.2's mptsas1068 with Debian 12's kernel (6.1, mptsas 3.04.20): SeaBIOS boots
// from it and GRUB loads the kernel through it, the driver finds the controller
// ("ioc0: LSISAS1068 A0 … Ports=8"), but no SAS device is ever attached — same with
// one disk, automatic or fixed SCSI ids, MSI on or off, q35 or i440fx, and with the
// disk as a data disk on a machine booted from virtio-blk.
const STORAGE_GAPS: Record<string, string> = {
  mptsas1068:
    'QEMU 7.2\'s mptsas1068 shows Linux 6.1\'s mptsas driver the controller but no disks (see docs/hardware-lab.md, "Emulation gaps"); not a defect of the image',
}

/** Why a storage device cannot be tested on this QEMU, or undefined when it can. */
export function storageEmulationGap(storage: StorageDevice): string | undefined {
  return STORAGE_GAPS[storage.device]
}
