// The machine's inventory, read from sysfs and procfs only: the deploy environment
// is a small initramfs with no lspci, lsblk or ip. Attributes follow the kernel's
// Documentation/ABI: testing/sysfs-bus-pci (vendor, device, subsystem_*, class,
// driver, modalias), stable/sysfs-block (size in 512-byte units, queue/*_block_size,
// removable), testing/sysfs-class-net (address, carrier), and the UEFI variable
// SecureBoot of EFI_GLOBAL_VARIABLE (UEFI 2.10 §3.3) as efivarfs shows it: a u32 of
// attributes, then the one-byte value.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { readAttr } from '../install/target-info.js'
import type { DiskInfo, Inventory, NicInfo, PciDevice } from './inventory-types.js'

/** Where collectInventory() reads; tests point these at a synthetic tree. */
export interface InventoryRoots {
  sysfs?: string
  procfs?: string
  /** Where the disks' device nodes are named (paths only; nothing is opened). */
  devfs?: string
}

/** The efivarfs file of the SecureBoot variable (EFI_GLOBAL_VARIABLE GUID). */
export const SECURE_BOOT_VAR = 'firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c'

const PCI_ADDRESS = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i
// Block devices that are never an install target: RAM disks and compressed swap.
const SKIPPED_BLOCK = /^(ram|zram)\d+$/

/** Reads this machine's inventory (or the one under `opts`' roots). */
export async function collectInventory(opts: InventoryRoots = {}): Promise<Inventory> {
  const sys = await fsp.realpath(opts.sysfs ?? '/sys')
  const proc = opts.procfs ?? '/proc'
  const dev = opts.devfs ?? '/dev'
  const [firmware, cpus, memoryBytes, pci, disks, nics, uptimeSeconds] = await Promise.all([
    readFirmware(sys),
    readCpuCount(sys, proc),
    readMemoryBytes(proc),
    readPciDevices(sys),
    readDisks(sys, dev),
    readNics(sys),
    readUptime(proc),
  ])
  return {
    version: 1,
    firmware,
    cpus,
    memoryBytes,
    pci,
    disks,
    nics,
    ...(uptimeSeconds !== undefined ? { uptimeSeconds } : {}),
  }
}

/** /proc/uptime's first number (seconds since the kernel started), or undefined. */
export async function readUptime(proc: string): Promise<number | undefined> {
  const text = await fsp.readFile(path.join(proc, 'uptime'), 'utf8').catch(() => '')
  const n = Number(text.split(/\s+/)[0])
  return text && Number.isFinite(n) && n >= 0 ? n : undefined
}

/** bios, uefi, or uefi-secureboot (the SecureBoot variable's value byte is 1). */
export async function readFirmware(sys: string): Promise<Inventory['firmware']> {
  if (!(await exists(path.join(sys, 'firmware/efi')))) return 'bios'
  const v = await fsp.readFile(path.join(sys, SECURE_BOOT_VAR)).catch(() => undefined)
  // efivarfs: 4 bytes of attributes, then the data; SecureBoot's data is one byte.
  if (v !== undefined && v.length >= 5) return v[4] === 1 ? 'uefi-secureboot' : 'uefi'
  // Without the variable (efivarfs not mounted, or not readable as a file — so it was in the
  // deploy environment under OVMF): the kernel's own record, what its EFI stub found.
  const params = await fsp.readFile(path.join(sys, BOOT_PARAMS)).catch(() => undefined)
  return params !== undefined &&
    params.length > BOOT_PARAMS_SECURE_BOOT &&
    params[BOOT_PARAMS_SECURE_BOOT] === EFI_SECUREBOOT_MODE_ENABLED
    ? 'uefi-secureboot'
    : 'uefi'
}

/** x86 boot_params as the kernel exports them (Documentation/ABI/testing/sysfs-kernel-boot_params). */
export const BOOT_PARAMS = 'kernel/boot_params/data'
/** struct boot_params' `secure_boot` byte (arch/x86/include/uapi/asm/bootparam.h, offset 0x1ec). */
const BOOT_PARAMS_SECURE_BOOT = 0x1ec
/** enum efi_secureboot_mode (include/linux/efi.h): unset 0, unknown 1, disabled 2, enabled 3. */
const EFI_SECUREBOOT_MODE_ENABLED = 3

/** The online CPUs (cpu/online ranges such as "0-3,6"), else /proc/cpuinfo's processors. */
export async function readCpuCount(sys: string, proc: string): Promise<number> {
  const online = await readAttr(path.join(sys, 'devices/system/cpu/online'))
  if (online !== undefined) {
    const n = countRanges(online)
    if (n !== undefined) return n
  }
  const cpuinfo = await fsp.readFile(path.join(proc, 'cpuinfo'), 'utf8').catch(() => '')
  return cpuinfo.split('\n').filter((l) => /^processor\s*:/.test(l)).length
}

/** Counts a kernel CPU list ("0-3,6,8-9" → 7); undefined if it does not parse. */
export function countRanges(list: string): number | undefined {
  let n = 0
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (!m) return undefined
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) return undefined
    n += hi - lo + 1
  }
  return n
}

/** MemTotal from /proc/meminfo, in bytes (the file counts kB, meaning KiB); 0 if unreadable. */
export async function readMemoryBytes(proc: string): Promise<number> {
  const text = await fsp.readFile(path.join(proc, 'meminfo'), 'utf8').catch(() => '')
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text)
  return m ? Number(m[1]) * 1024 : 0
}

/** Every PCI function under bus/pci/devices, sorted by address. */
export async function readPciDevices(sys: string): Promise<PciDevice[]> {
  const base = path.join(sys, 'bus/pci/devices')
  const names = (await fsp.readdir(base).catch(() => [] as string[])).filter((n) => PCI_ADDRESS.test(n)).sort()
  const out: PciDevice[] = []
  for (const address of names) {
    const d = path.join(base, address)
    const vendor = hexId(await readAttr(path.join(d, 'vendor')), 4)
    const device = hexId(await readAttr(path.join(d, 'device')), 4)
    if (vendor === undefined || device === undefined) continue
    const entry: PciDevice = {
      address,
      vendor,
      device,
      class: hexId(await readAttr(path.join(d, 'class')), 6) ?? '000000',
    }
    const sv = hexId(await readAttr(path.join(d, 'subsystem_vendor')), 4)
    const sd = hexId(await readAttr(path.join(d, 'subsystem_device')), 4)
    if (sv !== undefined) entry.subsystemVendor = sv
    if (sd !== undefined) entry.subsystemDevice = sd
    const driver = await driverOf(d)
    if (driver !== undefined) entry.driver = driver
    const modalias = await readAttr(path.join(d, 'modalias'))
    if (modalias !== undefined) entry.modalias = modalias
    out.push(entry)
  }
  return out
}

/** Whole disks under /sys/block: no partitions, no RAM disks, no unattached loop devices. */
export async function readDisks(sys: string, dev: string): Promise<DiskInfo[]> {
  const base = path.join(sys, 'block')
  const out: DiskInfo[] = []
  for (const name of (await fsp.readdir(base).catch(() => [] as string[])).sort()) {
    if (SKIPPED_BLOCK.test(name)) continue
    const d = path.join(base, name)
    // A loop device with nothing attached has no loop/ directory (drivers/block/loop.c).
    if (name.startsWith('loop') && (await readAttr(path.join(d, 'loop/backing_file'))) === undefined) continue
    const real = await fsp.realpath(d).catch(() => d)
    const disk: DiskInfo = {
      path: path.join(dev, name),
      name,
      // sysfs "size" counts 512-byte units whatever the logical block size (include/linux/blkdev.h SECTOR_SHIFT).
      sizeBytes: Number((await readAttr(path.join(d, 'size'))) ?? 0) * 512,
      logicalSectorSize: Number((await readAttr(path.join(d, 'queue/logical_block_size'))) ?? 512),
      physicalSectorSize: Number((await readAttr(path.join(d, 'queue/physical_block_size'))) ?? 512),
      rotational: (await readAttr(path.join(d, 'queue/rotational'))) === '1',
      removable: (await readAttr(path.join(d, 'removable'))) === '1',
    }
    // The same attributes, in the same order of preference, as the installer's target-info.ts.
    const model = await readAttr(path.join(d, 'device/model'))
    const serial = (await readAttr(path.join(d, 'device/serial'))) ?? (await readAttr(path.join(d, 'serial')))
    const wwn = (await readAttr(path.join(d, 'wwid'))) ?? (await readAttr(path.join(d, 'device/wwid')))
    if (model) disk.model = model
    if (serial) disk.serial = serial
    if (wwn) disk.wwn = wwn
    const controller = pciAddressIn(sys, real)
    if (controller !== undefined) disk.controller = controller
    out.push(disk)
  }
  return out
}

/** Network interfaces backed by a device (no loopback, nothing under devices/virtual). */
export async function readNics(sys: string): Promise<NicInfo[]> {
  const base = path.join(sys, 'class/net')
  const out: NicInfo[] = []
  for (const name of (await fsp.readdir(base).catch(() => [] as string[])).sort()) {
    if (name === 'lo') continue
    const d = path.join(base, name)
    const real = await fsp.realpath(d).catch(() => d)
    if (isVirtual(sys, real)) continue
    const mac = (await readAttr(path.join(d, 'address')))?.toLowerCase()
    if (mac === undefined) continue
    // carrier reads as EINVAL while the interface is down: no link known.
    const nic: NicInfo = { name, mac, link: (await readAttr(path.join(d, 'carrier'))) === '1' }
    const driver = await driverOf(path.join(d, 'device'))
    if (driver !== undefined) nic.driver = driver
    const pci = pciAddressIn(sys, real)
    if (pci !== undefined) nic.pci = pci
    out.push(nic)
  }
  return out
}

/** The deepest PCI address on a device's sysfs path: the function the device hangs off. */
export function pciAddressIn(sys: string, realPath: string): string | undefined {
  const rel = path.relative(sys, realPath).split(path.sep)
  if (rel[0] !== 'devices') return undefined
  for (let i = rel.length - 1; i >= 0; i--) if (PCI_ADDRESS.test(rel[i]!)) return rel[i]!.toLowerCase()
  return undefined
}

function isVirtual(sys: string, realPath: string): boolean {
  return path.relative(sys, realPath).startsWith(`devices${path.sep}virtual${path.sep}`)
}

async function driverOf(deviceDir: string): Promise<string | undefined> {
  try {
    return path.basename(await fsp.readlink(path.join(deviceDir, 'driver')))
  } catch {
    return undefined
  }
}

// sysfs writes ids as "0x8086" and the class as "0x010601".
function hexId(text: string | undefined, digits: number): string | undefined {
  if (text === undefined) return undefined
  const m = /^(?:0x)?([0-9a-f]+)$/i.exec(text)
  return m ? m[1]!.toLowerCase().padStart(digits, '0') : undefined
}

async function exists(p: string): Promise<boolean> {
  return await fsp.access(p).then(
    () => true,
    () => false,
  )
}
