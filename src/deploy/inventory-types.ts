// What the deploy environment reports about a machine before installing it (network
// deploy issue): its PCI devices, disks, NICs, firmware mode, CPUs and memory. The
// deploy environment collects it (inventory.ts), `serve` stores it and checks the
// assigned image's kernel against it (preflight.ts).

/** One PCI function, as sysfs shows it (/sys/bus/pci/devices/*). */
export interface PciDevice {
  /** Domain:bus:device.function, e.g. "0000:00:1f.2". */
  address: string
  /** Lowercase hex, 4 digits each: "8086", "2922". */
  vendor: string
  device: string
  subsystemVendor?: string
  subsystemDevice?: string
  /** The 24-bit class code as 6 hex digits: "010601" (SATA AHCI). */
  class: string
  /** The driver bound to it now (in the deploy environment), if any. */
  driver?: string
  /** The kernel's modalias ("pci:v00008086d00002922sv…"), which modules.alias is matched against. */
  modalias?: string
}

/** One disk (a whole block device, not a partition). */
export interface DiskInfo {
  /** "/dev/sda". */
  path: string
  name: string
  sizeBytes: number
  logicalSectorSize: number
  physicalSectorSize: number
  model?: string
  serial?: string
  wwn?: string
  rotational: boolean
  removable: boolean
  /** The PCI address of the controller it sits on, when it has one. */
  controller?: string
}

/** One network interface with a MAC (no loopback, no virtual devices). */
export interface NicInfo {
  name: string
  /** Lowercase, colon-separated. */
  mac: string
  link: boolean
  driver?: string
  /** The PCI address of the device, when it has one. */
  pci?: string
}

/** The machine as the deploy environment sees it. */
export interface Inventory {
  /** Format version of this document. */
  version: 1
  firmware: 'bios' | 'uefi' | 'uefi-secureboot'
  cpus: number
  memoryBytes: number
  pci: PciDevice[]
  disks: DiskInfo[]
  nics: NicInfo[]
  /** Seconds since this kernel started (/proc/uptime), so serve can date the boot. */
  uptimeSeconds?: number
}
