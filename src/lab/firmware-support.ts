// Which firmware can boot from which disk controller. A firmware without a driver
// for a controller (and no option ROM on the card) cannot start anything from it,
// on QEMU or on a real machine: such a cell is "not applicable", not a driver bug
// of the image. The table is QEMU 7.2's SeaBIOS 1.16.2 and Debian 12's OVMF
// (edk2 2022.11), each entry checked by booting the default image to GRUB
// (docs/hardware-lab.md, "Firmware and controllers").

import type { StorageDevice } from '../tools/qemu-devices.js'
import type { Firmware } from '../tools/qemu.js'

/** Whether a firmware can boot from a controller, and why not. */
export type FirmwareSupport = { applicable: true } | { applicable: false; reason: string }

// OVMF's drivers for disk controllers: VirtioBlkDxe, VirtioScsiDxe, the SATA/AHCI
// and IDE stack, NvmExpressDxe, PvScsiDxe, MptScsiDxe (LSI 53C1030 and SAS 1068) and
// USB mass storage; no MegaRAID driver, and QEMU's megasas/lsi cards carry no UEFI
// option ROM. SeaBIOS has drivers for all of these (megasas.c, mpt-scsi.c, lsi-scsi.c,
// esp-scsi.c, pvscsi.c, virtio, AHCI, NVMe, USB).
const OVMF_CANNOT: Record<string, string> = {
  megasas: 'OVMF has no MegaRAID SAS driver and QEMU\'s megasas card has no UEFI option ROM',
  'megasas-gen2': 'OVMF has no MegaRAID SAS driver and QEMU\'s megasas-gen2 card has no UEFI option ROM',
  lsi53c895a: 'Debian\'s OVMF is built without LsiScsiDxe (LSI 53C895A) and the card has no UEFI option ROM',
  lsi53c810: 'OVMF has no LSI 53C810 driver and the card has no UEFI option ROM',
  am53c974: 'OVMF has no AMD Am53c974 (ESP) SCSI driver',
  dc390: 'OVMF has no Tekram DC-390 (ESP) SCSI driver',
}

const SEABIOS_CANNOT: Record<string, string> = {
  lsi53c810: 'SeaBIOS drives the LSI 53C895A only, not the 53C810',
}

/** Whether `firmware` can boot from a disk on `storage`. */
export function firmwareSupport(firmware: Firmware, storage: StorageDevice): FirmwareSupport {
  const table = firmware === 'bios' ? SEABIOS_CANNOT : OVMF_CANNOT
  const reason = table[storage.device]
  return reason ? { applicable: false, reason } : { applicable: true }
}
