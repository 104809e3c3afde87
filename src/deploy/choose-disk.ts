// The disk a machine is installed on, chosen from its inventory by its disk hints (the
// installer's --disk-hint mechanism, src/install/disk-hints.ts selectDisk) — the same
// choice in serve (which disk's controller the pre-flight check looks at) and in the
// deploy agent (which disk it installs). Without hints: the first fixed disk.

import { DeviceError } from '../errors.js'
import { type DiskCandidate, describeDisk, parseDiskHints, selectDisk } from '../install/disk-hints.js'
import type { DiskInfo, Inventory } from './inventory-types.js'

/** An inventory disk as the hint matcher sees it (lsblk's columns). */
export function diskCandidateOf(d: DiskInfo): DiskCandidate {
  return {
    name: d.name,
    path: d.path,
    size: d.sizeBytes,
    sectorSize: d.logicalSectorSize,
    type: 'disk',
    rotational: d.rotational,
    ...(d.serial !== undefined ? { serial: d.serial } : {}),
    ...(d.wwn !== undefined ? { wwn: d.wwn } : {}),
    ...(d.model !== undefined ? { model: d.model } : {}),
  }
}

/** The one disk the hints select (DEVICE_SELECT listing the disks otherwise); without hints the first fixed disk. */
export function chooseDisk(inventory: Inventory, hints: readonly string[]): DiskInfo {
  if (hints.length > 0) {
    const picked = selectDisk(inventory.disks.map(diskCandidateOf), parseDiskHints([...hints]))
    return inventory.disks.find((d) => d.path === picked.path)!
  }
  const fixed = inventory.disks.find((d) => !d.removable && d.sizeBytes > 0)
  if (fixed) return fixed
  throw new DeviceError('DEVICE_SELECT', 'Cannot select a disk: the machine has no fixed disk', {
    hint: inventory.disks.length
      ? `its disks (all removable or empty): ${inventory.disks.map((d) => describeDisk(diskCandidateOf(d))).join('; ')}`
      : 'the inventory lists no disks: is the disk controller driven by the deploy environment?',
  })
}
