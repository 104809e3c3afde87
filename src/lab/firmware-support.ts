// Which firmware can boot from which disk controller. A firmware without a driver
// for a controller (and no option ROM on the card) cannot start anything from it,
// on QEMU or on a real machine: such a cell is "not applicable", not a driver bug
// of the image. The table is QEMU 7.2's SeaBIOS 1.16.2 and Debian 12's OVMF.

import type { StorageDevice } from '../tools/qemu-devices.js'
import type { Firmware } from '../tools/qemu.js'

/** Whether a firmware can boot from a controller, and why not. */
export type FirmwareSupport = { applicable: true } | { applicable: false; reason: string }

// Booting the default image to its kernel on each controller (QEMU 7.2, Debian 12's
// OVMF and SeaBIOS; docs/hardware-lab.md, "Firmware and controllers"): OVMF boots
// from virtio-blk, virtio-scsi, AHCI, NVMe, IDE (piix4-ide) and USB storage, and
// finds no disk at all behind MegaRAID, LSI SAS 1068, LSI 53C895A, PVSCSI or the ESP
// cards: Debian builds it without MptScsiDxe, PvScsiDxe and LsiScsiDxe, edk2 has no
// MegaRAID driver, and QEMU's cards carry no UEFI option ROM. SeaBIOS booted every
// one of them (megasas.c, mpt-scsi.c, lsi-scsi.c, esp-scsi.c, pvscsi.c, …).
const OVMF_CANNOT: Record<string, string> = {
  megasas: "OVMF has no MegaRAID SAS driver and QEMU's megasas card has no UEFI option ROM",
  'megasas-gen2': "OVMF has no MegaRAID SAS driver and QEMU's megasas-gen2 card has no UEFI option ROM",
  mptsas1068:
    "Debian's OVMF is built without a driver for the LSI SAS 1068 (edk2 MptScsiDxe) and QEMU's card has no UEFI option ROM",
  pvscsi: "Debian's OVMF is built without a PVSCSI driver (edk2 PvScsiDxe)",
  lsi53c895a:
    "Debian's OVMF is built without a driver for the LSI 53C895A (edk2 LsiScsiDxe) and QEMU's card has no UEFI option ROM",
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
