// What a kernel weighs: vmlinuz, the module tree, and the modules grouped by the
// subsystem they live in (their directory under kernel/).

import type { KernelTree } from './kernel-package.js'

/** Size and count of the modules of one subsystem. */
export interface SubsystemSize {
  subsystem: string
  modules: number
  bytes: number
}

/** The result of `hwimage kernel analyze`. */
export interface KernelAnalysis {
  source: string
  version: string
  vmlinuzBytes: number
  moduleCount: number
  /** Sum of module file sizes. */
  moduleBytes: number
  /** Every regular file under lib/modules/<version>: modules plus index files. */
  treeBytes: number
  /** vmlinuz + lib/modules/<version>. */
  footprintBytes: number
  builtinCount: number
  aliasCount: number
  /** Modules with at least one `pci:` alias: PCI device drivers. */
  pciDriverCount: number
  subsystems: SubsystemSize[]
}

// Directories grouped one or two levels deeper than the default two, because
// they are wide: drivers/net/ethernet/intel, drivers/usb/host, drivers/gpu/drm/amd …
// Longest prefix first.
const DEEPER: readonly [string, number][] = [
  ['drivers/net/ethernet', 4],
  ['drivers/net/wireless', 4],
  ['drivers/gpu/drm', 4],
  ['drivers/net', 3],
  ['drivers/media', 3],
  ['drivers/infiniband', 3],
  ['drivers/usb', 3],
  ['net/netfilter', 3],
]

/**
 * The subsystem of a module path: its first `depth` directories under kernel/; by
 * default two (drivers/scsi, fs/ext4), more inside the widest trees
 * (drivers/net/ethernet/intel, drivers/usb/host).
 */
export function subsystemOf(modulePath: string, depth?: number): string {
  const dirs = modulePath.split('/').slice(0, -1)
  if (dirs[0] === 'kernel') dirs.shift()
  if (dirs.length === 0) return '(top)'
  let n = depth ?? 2
  if (depth === undefined) {
    const joined = dirs.join('/')
    const deep = DEEPER.find(([d]) => joined === d || joined.startsWith(`${d}/`))
    if (deep) n = deep[1]
  }
  return dirs.slice(0, n).join('/')
}

/** Sizes by subsystem and module counts of a kernel tree. */
export function analyzeKernel(tree: KernelTree, opts: { depth?: number } = {}): KernelAnalysis {
  const groups = new Map<string, SubsystemSize>()
  let moduleBytes = 0
  for (const m of tree.modules.values()) {
    moduleBytes += m.bytes
    const key = subsystemOf(m.path, opts.depth)
    const g = groups.get(key) ?? { subsystem: key, modules: 0, bytes: 0 }
    g.modules++
    g.bytes += m.bytes
    groups.set(key, g)
  }
  const pciDrivers = new Set(tree.aliases.filter((a) => a.pattern.startsWith('pci:')).map((a) => a.module))
  return {
    source: tree.source,
    version: tree.version,
    vmlinuzBytes: tree.vmlinuzBytes,
    moduleCount: tree.modules.size,
    moduleBytes,
    treeBytes: tree.treeBytes,
    footprintBytes: tree.vmlinuzBytes + tree.treeBytes,
    builtinCount: tree.builtin.size,
    aliasCount: tree.aliases.length,
    pciDriverCount: [...pciDrivers].filter((m) => tree.modules.has(m)).length,
    subsystems: [...groups.values()].sort((a, b) => b.bytes - a.bytes || a.subsystem.localeCompare(b.subsystem)),
  }
}
