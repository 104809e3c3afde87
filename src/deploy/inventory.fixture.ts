// Inventories for the pre-flight check's tests: PCI functions with the modalias the kernel
// gives them, and a machine whose disks sit on given controllers.

import type { Inventory, PciDevice } from './inventory-types.js'

/** A PCI function as collectInventory() reports it, with its modalias. */
export function pci(address: string, vendor: string, device: string, cls: string, sub = ['1af4', '1100']): PciDevice {
  const w = (s: string) => s.toUpperCase().padStart(8, '0')
  const c = cls.toUpperCase()
  return {
    address,
    vendor,
    device,
    subsystemVendor: sub[0]!,
    subsystemDevice: sub[1]!,
    class: cls,
    modalias: `pci:v${w(vendor)}d${w(device)}sv${w(sub[0]!)}sd${w(sub[1]!)}bc${c.slice(0, 2)}sc${c.slice(2, 4)}i${c.slice(4, 6)}`,
  }
}

/** A machine whose disks sit on `controllers` (sda, sdb …) and whose NICs are `nics`. */
export function machine(controllers: PciDevice[], nics: { dev: PciDevice; link: boolean }[]): Inventory {
  return {
    version: 1,
    firmware: 'uefi',
    cpus: 2,
    memoryBytes: 2 ** 31,
    pci: [...controllers, ...nics.map((n) => n.dev)],
    disks: controllers.map((c, i) => ({
      path: `/dev/sd${String.fromCharCode(97 + i)}`,
      name: `sd${String.fromCharCode(97 + i)}`,
      sizeBytes: 20 * 2 ** 30,
      logicalSectorSize: 512,
      physicalSectorSize: 512,
      rotational: true,
      removable: false,
      controller: c.address,
    })),
    nics: nics.map((n, i) => ({ name: `eth${i}`, mac: `52:54:00:00:00:0${i}`, link: n.link, pci: n.dev.address })),
  }
}
