// The pre-flight hardware check: before a machine is installed, its inventory is
// compared with the image's kernel. The controller of the disk to be installed must
// have a driver in the image's kernel, and so must at least one NIC with a link
// (the installed system has to reach the network to report its first boot). A
// device is driven when its modalias matches an alias of a module the image ships
// or of a driver built into its vmlinuz — the matching of `hwimage kernel coverage`
// (src/kernel/coverage.ts driversIn, over alias-index.ts). When the image's kernel
// lacks a driver, the generic kernel's aliases, if given, say which module would
// drive it, and the message names the flavor that has it.

import { InputError } from '../errors.js'
import type { AliasIndex, PciId } from '../kernel/alias-index.js'
import { aliasIndexOf, driversIn, type DriverIndexes } from '../kernel/coverage.js'
import { classNameOf } from '../kernel/pci-classes.js'
import type { ImageKernel } from './image-kernel.js'
import type { Inventory, PciDevice } from './inventory-types.js'

/** A device the image's kernel has no driver for. */
export interface PreflightProblem {
  device: PciDevice
  role: 'disk-controller' | 'nic'
  message: string
  /** Modules of the generic kernel that would drive it (empty when none, or no generic kernel was given). */
  genericModules: string[]
}

/** One device the check looked at, and the image's drivers for it. */
export interface CheckedDevice {
  role: 'disk-controller' | 'nic'
  /** The disk path or the NIC name it was checked for. */
  for: string
  address: string
  id: string
  /** The image's modules (or built-in drivers) that drive it; empty = none. */
  drivers: string[]
}

/** The verdict of preflight(). */
export interface PreflightVerdict {
  ok: boolean
  problems: PreflightProblem[]
  checked: {
    kernel: { flavor: string; version: string }
    /** The disks whose controllers were checked. */
    disks: string[]
    devices: CheckedDevice[]
    /** Disks and NICs with no PCI function to check (dm, md, loop; a USB NIC …). */
    skipped: string[]
  }
}

/** Options of preflight(). */
export interface PreflightOptions {
  /** The disk to install (a path or name in the inventory); without it every fixed disk is checked. */
  diskPath?: string
  /** Debian's generic kernel (all its modules), to name the module and flavor that drive a device. */
  generic?: DriverIndexes & { modules: { keys(): Iterable<string> } }
}

// The alias indexes of a pair of kernels, built once: serve checks every enlisting machine
// against the same image kernel, and building the index was a few per cent of its CPU at load.
const indexes = new WeakMap<DriverIndexes, WeakMap<DriverIndexes, AliasIndex>>()
const ALONE: DriverIndexes = { aliases: [], builtin: new Set(), builtinAliases: [] }

function cachedAliasIndex(tree: DriverIndexes, other?: DriverIndexes): AliasIndex {
  let byOther = indexes.get(tree)
  if (!byOther) indexes.set(tree, (byOther = new WeakMap()))
  let index = byOther.get(other ?? ALONE)
  if (!index) byOther.set(other ?? ALONE, (index = aliasIndexOf(tree, other)))
  return index
}

/** Checks that the image's kernel drives the chosen disk's controller and a NIC with a link. */
export function preflight(inventory: Inventory, kernel: ImageKernel, opts: PreflightOptions = {}): PreflightVerdict {
  const index = cachedAliasIndex(kernel, opts.generic)
  const genericIndex = opts.generic ? cachedAliasIndex(opts.generic, kernel) : undefined
  const genericSet = opts.generic ? { tree: opts.generic, modules: new Set(opts.generic.modules.keys()) } : undefined
  const byAddress = new Map(inventory.pci.map((p) => [p.address, p]))
  const devices: CheckedDevice[] = []
  const skipped: string[] = []
  const problems: PreflightProblem[] = []

  const check = (
    role: CheckedDevice['role'],
    what: string,
    address: string | undefined,
  ): { dev: PciDevice; entry: CheckedDevice } | undefined => {
    const dev = address !== undefined ? byAddress.get(address) : undefined
    if (!dev) {
      skipped.push(what)
      return undefined
    }
    const entry: CheckedDevice = {
      role,
      for: what,
      address: dev.address,
      id: `${dev.vendor}:${dev.device}`,
      drivers: driversIn(index, question(dev), { tree: kernel, modules: kernel.modules }).sort(),
    }
    devices.push(entry)
    return { dev, entry }
  }
  const problem = (role: CheckedDevice['role'], dev: PciDevice): PreflightProblem => {
    const genericModules = genericIndex && genericSet ? driversIn(genericIndex, question(dev), genericSet).sort() : []
    return {
      device: dev,
      role,
      message: problemMessage(dev, role, kernel, genericModules, opts.generic !== undefined),
      genericModules,
    }
  }

  // The disk: the one named, or every fixed disk.
  const disks =
    opts.diskPath !== undefined ? [findDisk(inventory, opts.diskPath)] : inventory.disks.filter((d) => !d.removable)
  const seen = new Set<string>()
  for (const disk of disks) {
    const c = check('disk-controller', disk.path, disk.controller)
    if (!c || seen.has(c.dev.address)) continue
    seen.add(c.dev.address)
    if (c.entry.drivers.length === 0) problems.push(problem('disk-controller', c.dev))
  }

  // NICs with a link: one driven is enough; refuse only when none is.
  const linked: PciDevice[] = []
  let nicDriven = false
  for (const nic of inventory.nics.filter((n) => n.link)) {
    const c = check('nic', nic.name, nic.pci)
    if (!c) continue
    linked.push(c.dev)
    if (c.entry.drivers.length > 0) nicDriven = true
  }
  if (linked.length > 0 && !nicDriven) for (const dev of linked) problems.push(problem('nic', dev))

  return {
    ok: problems.length === 0,
    problems,
    checked: {
      kernel: { flavor: kernel.flavor, version: kernel.version },
      disks: disks.map((d) => d.path),
      devices,
      skipped,
    },
  }
}

function findDisk(inventory: Inventory, want: string): Inventory['disks'][number] {
  const d = inventory.disks.find((x) => x.path === want || x.name === want || `/dev/${x.name}` === want)
  if (d) return d
  throw new InputError('NOT_FOUND', `Cannot check disk "${want}": the inventory has no such disk`, {
    hint: inventory.disks.length
      ? `its disks: ${inventory.disks.map((x) => x.path).join(', ')}`
      : 'the inventory lists no disks',
  })
}

// What the alias index is asked: the full modalias when sysfs gave one (matched as
// modprobe does), else the ids and class code.
function question(dev: PciDevice): { modalias?: string; pci?: PciId } {
  if (dev.modalias?.startsWith('pci:')) return { modalias: dev.modalias }
  const c = dev.class.padStart(6, '0').toUpperCase()
  return {
    pci: {
      vendor: dev.vendor.toUpperCase(),
      device: dev.device.toUpperCase(),
      ...(dev.subsystemVendor ? { subvendor: dev.subsystemVendor.toUpperCase() } : {}),
      ...(dev.subsystemDevice ? { subdevice: dev.subsystemDevice.toUpperCase() } : {}),
      classes: [{ base: c.slice(0, 2), sub: c.slice(2, 4), progIf: c.slice(4, 6) }],
    },
  }
}

function problemMessage(
  dev: PciDevice,
  role: CheckedDevice['role'],
  kernel: ImageKernel,
  genericModules: string[],
  genericKnown: boolean,
): string {
  const cls = classNameOf(dev.class.slice(0, 2), dev.class.slice(2, 4))
  const what = role === 'nic' ? 'no NIC with a link has a driver' : 'the disk controller has no driver'
  const head = `the image's kernel (${kernel.flavor} ${kernel.version}) has no driver for ${dev.vendor}:${dev.device}`
  if (genericModules.length > 0) {
    const mods = genericModules.join(', ')
    const fix =
      kernel.flavor === 'server'
        ? `add it with kernel.modules.add: [${genericModules[0]}], or use kernel.flavor: generic`
        : kernel.flavor === 'generic'
          ? `the image lacks ${mods}; build it again`
          : 'use kernel.flavor: generic'
    return `${head} (${cls}, ${mods}) at ${dev.address}: ${what}; ${fix}`
  }
  const none = genericKnown
    ? "no module of Debian's generic kernel drives it either"
    : 'a kernel with a driver for this device is needed'
  return `${head} (${cls}) at ${dev.address}: ${what}; ${none}`
}
