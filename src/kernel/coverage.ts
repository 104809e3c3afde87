// How much of some hardware a module set drives. A device is driven by a set when
// one of its aliases names a module of the set or a driver built into vmlinuz.
// Coverage of a class is the device-count-weighted share of what the baseline
// (by default every module of the same kernel) drives that the set also drives;
// devices no module of the baseline drives are counted apart, not against the set.

import { AliasIndex } from './alias-index.js'
import type { Inventory, InventoryDevice } from './inventory.js'
import type { KernelTree } from './kernel-package.js'
import type { ModuleAlias } from './module-indexes.js'
import { closeUnderDependencies } from './module-set.js'
import { SERVER_CLASSES } from './pci-classes.js'

/** A device the baseline drives and the set does not. */
export interface UncoveredDevice {
  id: string
  name: string
  count: number
  /** Baseline modules that would drive it. */
  modules: string[]
}

/** Coverage of one device class. */
export interface ClassCoverage {
  class: string
  /** Devices in the inventories (weighted by count). */
  devices: number
  /** Of those, driven by the baseline. */
  baselineDriven: number
  /** Of those, driven by the set. */
  covered: number
  /** covered / baselineDriven; null when the baseline drives none. */
  share: number | null
  notCovered: UncoveredDevice[]
  /** Devices not even the baseline drives. */
  undriven: number
  /** Bytes of the set's modules that drive devices of this class, with their dependencies. */
  setModuleBytes: number
  baselineModuleBytes: number
}

/** A module set to measure, within its kernel. */
export interface MeasuredSet {
  name: string
  tree: KernelTree
  modules: ReadonlySet<string>
}

/** What `hwimage kernel coverage` reports. */
export interface CoverageReport {
  set: SetSummary
  baseline: SetSummary
  inventories: { source: string; format: string; devices: number }[]
  classes: ClassCoverage[]
}

/** A set's size: its modules and the footprint with vmlinuz (module files as they are in the tree). */
export interface SetSummary {
  name: string
  kernel: string
  modules: number
  moduleBytes: number
  footprintBytes: number
}

/** Measures a set against inventories, relative to a baseline set. */
export function measureCoverage(
  set: MeasuredSet,
  baseline: MeasuredSet,
  inventories: readonly Inventory[],
): CoverageReport {
  const setIndex = aliasIndexOf(set.tree, baseline.tree)
  const baseIndex = baseline.tree === set.tree ? setIndex : aliasIndexOf(baseline.tree, set.tree)
  const byClass = new Map<string, ClassAccumulator>()
  for (const inv of inventories) {
    for (const dev of inv.devices) {
      const acc = byClass.get(dev.class) ?? newAccumulator(dev.class)
      byClass.set(dev.class, acc)
      const setDrivers = driversIn(setIndex, dev, set)
      const baseDrivers = driversIn(baseIndex, dev, baseline)
      acc.devices += dev.count
      if (baseDrivers.length === 0) {
        acc.undriven += dev.count
        continue
      }
      acc.baselineDriven += dev.count
      for (const m of baseDrivers) acc.baselineModules.add(m)
      if (setDrivers.length > 0) {
        acc.covered += dev.count
        for (const m of setDrivers) acc.setModules.add(m)
      } else {
        const prev = acc.notCovered.get(dev.id)
        if (prev) prev.count += dev.count
        else acc.notCovered.set(dev.id, { id: dev.id, name: dev.name, count: dev.count, modules: baseDrivers.sort() })
      }
    }
  }
  const classes = [...byClass.values()].map((a) => finish(a, set, baseline))
  classes.sort((a, b) => rank(a.class) - rank(b.class) || b.devices - a.devices || a.class.localeCompare(b.class))
  return {
    set: summary(set),
    baseline: summary(baseline),
    inventories: inventories.map((i) => ({
      source: i.source,
      format: i.format,
      devices: i.devices.reduce((s, d) => s + d.count, 0),
    })),
    classes,
  }
}

/** A set's module count and sizes. */
export function summary(s: MeasuredSet): SetSummary {
  let moduleBytes = 0
  for (const m of s.modules) moduleBytes += s.tree.modules.get(m)?.bytes ?? 0
  return {
    name: s.name,
    kernel: s.tree.version,
    modules: s.modules.size,
    moduleBytes,
    footprintBytes: s.tree.vmlinuzBytes + moduleBytes,
  }
}

interface ClassAccumulator {
  class: string
  devices: number
  baselineDriven: number
  covered: number
  undriven: number
  notCovered: Map<string, UncoveredDevice>
  setModules: Set<string>
  baselineModules: Set<string>
}

function newAccumulator(cls: string): ClassAccumulator {
  return {
    class: cls,
    devices: 0,
    baselineDriven: 0,
    covered: 0,
    undriven: 0,
    notCovered: new Map(),
    setModules: new Set(),
    baselineModules: new Set(),
  }
}

// Before Linux 6.11 (bookworm has 6.1), modules.builtin.modinfo carries no device
// aliases for built-in drivers, so a kernel with nvme built in (Debian's cloud
// kernel) cannot say what it drives. When two kernels are compared, a driver built
// into one borrows the aliases the other has for it as a module.
/** The indexes of a kernel that say what it drives (a KernelTree has them). */
export type DriverIndexes = Pick<KernelTree, 'aliases' | 'builtin' | 'builtinAliases'>

/** An index of a kernel's aliases and its built-in drivers', borrowing from `other` for built-ins without aliases. */
export function aliasIndexOf(tree: DriverIndexes, other?: DriverIndexes): AliasIndex {
  return new AliasIndex([...tree.aliases, ...tree.builtinAliases, ...(other ? borrowedAliases(tree, other) : [])])
}

function borrowedAliases(tree: DriverIndexes, other: DriverIndexes): ModuleAlias[] {
  if (tree === other) return []
  const known = new Set(tree.builtinAliases.map((a) => a.module))
  return other.aliases.filter((a) => tree.builtin.has(a.module) && !known.has(a.module))
}

/** The modules of `s` (or built-in drivers) that drive a device, by its modalias or its PCI id. */
export function driversIn(
  index: AliasIndex,
  dev: Pick<InventoryDevice, 'modalias' | 'pci'>,
  s: { tree: Pick<KernelTree, 'builtin'>; modules: ReadonlySet<string> },
): string[] {
  const all =
    dev.modalias !== undefined
      ? index.modulesForModalias(dev.modalias)
      : dev.pci
        ? index.modulesForPci(dev.pci)
        : new Set<string>()
  return [...all].filter((m) => s.modules.has(m) || s.tree.builtin.has(m))
}

function finish(a: ClassAccumulator, set: MeasuredSet, baseline: MeasuredSet): ClassCoverage {
  return {
    class: a.class,
    devices: a.devices,
    baselineDriven: a.baselineDriven,
    covered: a.covered,
    share: a.baselineDriven > 0 ? a.covered / a.baselineDriven : null,
    notCovered: [...a.notCovered.values()].sort((x, y) => y.count - x.count || x.id.localeCompare(y.id)),
    undriven: a.undriven,
    setModuleBytes: bytesWithDeps(set, a.setModules),
    baselineModuleBytes: bytesWithDeps(baseline, a.baselineModules),
  }
}

function bytesWithDeps(s: MeasuredSet, modules: Set<string>): number {
  let total = 0
  for (const m of closeUnderDependencies(s.tree, modules)) total += s.tree.modules.get(m)?.bytes ?? 0
  return total
}

// The server classes come first, in their order; the rest follow by device count.
function rank(cls: string): number {
  const i = SERVER_CLASSES.indexOf(cls)
  return i < 0 ? SERVER_CLASSES.length : i
}
