// The `server` flavor's module set, ready for the image builder: the policy's
// modules closed under dependencies, checked with depmod for unresolved symbols,
// with the firmware they ask for and what of it the image lacks.

import fs from 'node:fs/promises'
import path from 'node:path'
import { HwimageError } from '../errors.js'
import type { KernelTree } from './kernel-package.js'
import { findUnresolvedSymbols, type UnresolvedSymbol } from './kernel-symbols.js'
import { missingFirmware, moduleFirmware } from './module-firmware.js'
import { resolveModuleSet, type ModuleExtras, type ModulePolicy } from './module-set.js'
import { SERVER_POLICY } from './server-policy.js'

/** Options for selectServerModules(). */
export interface SelectOptions {
  /** An image root whose /lib/firmware is checked for the firmware the modules ask for. */
  imageRoot?: string
  /** Skip the depmod symbol check (default: check, and throw KERNEL_UNRESOLVED on a failure). */
  skipSymbolCheck?: boolean
  signal?: AbortSignal
}

/** The selected set and what comes with it. */
export interface ServerModuleSelection {
  kernel: string
  policy: string
  /** Module names, sorted. */
  modules: string[]
  /** Module → why it is in the set. */
  reasons: Record<string, string>
  dropped: { module: string; because: string }[]
  /** Names the policy asks for that the kernel lacks. */
  missingFromKernel: string[]
  /** Names asked for that are built into vmlinuz. */
  builtinRequested: string[]
  /** Every firmware file the modules ask for (modinfo), sorted. */
  firmware: string[]
  firmwareByModule: Record<string, string[]>
  /** Firmware files the image lacks; null when no image root was given. */
  missingFirmware: string[] | null
  /** Module files as they are in the tree (uncompressed .ko for a Debian package). */
  moduleBytes: number
  /** vmlinuz + the modules' bytes; the installed tree adds depmod's indexes, and compression shrinks the modules (see pruneModuleTree). */
  footprintBytes: number
  /** Whether depmod checked the set for unresolved symbols. */
  symbolsChecked: boolean
}

/**
 * Derives the server module set: policy + spec extras, closed under modules.dep,
 * checked with depmod -e (throws KERNEL_UNRESOLVED naming module and symbol),
 * with firmware from modinfo and, given an image root, the firmware it lacks.
 */
export async function selectServerModules(
  tree: KernelTree,
  policy: ModulePolicy = SERVER_POLICY,
  extras: ModuleExtras = {},
  opts: SelectOptions = {},
): Promise<ServerModuleSelection> {
  const set = resolveModuleSet(tree, policy, extras)
  if (!opts.skipSymbolCheck) {
    const unresolved = await findUnresolvedSymbols(tree, set.modules, { signal: opts.signal })
    if (unresolved.length > 0) throw unresolvedError(tree, unresolved)
  }
  const byModule = await moduleFirmware(tree, set.modules, { signal: opts.signal })
  const firmware = [...new Set([...byModule.values()].flat())].sort()
  let missing: string[] | null = null
  if (opts.imageRoot)
    missing = await missingFirmware(firmware, opts.imageRoot, tree.version, await firmwareSuffixes(tree))
  let moduleBytes = 0
  for (const m of set.modules) moduleBytes += tree.modules.get(m)!.bytes
  const modules = [...set.modules].sort()
  return {
    kernel: tree.version,
    policy: policy.name,
    modules,
    reasons: Object.fromEntries(modules.map((m) => [m, set.reasons.get(m) ?? ''])),
    dropped: set.dropped,
    missingFromKernel: set.missingFromKernel,
    builtinRequested: set.builtinRequested,
    firmware,
    firmwareByModule: Object.fromEntries([...byModule].sort(([a], [b]) => a.localeCompare(b))),
    missingFirmware: missing,
    moduleBytes,
    footprintBytes: tree.vmlinuzBytes + moduleBytes,
    symbolsChecked: !opts.skipSymbolCheck,
  }
}

/** The error for a set whose modules need symbols nothing exports. */
export function unresolvedError(tree: KernelTree, unresolved: UnresolvedSymbol[]): HwimageError {
  const first = unresolved
    .slice(0, 5)
    .map((u) => `${u.module} needs ${u.symbol}`)
    .join('; ')
  const modules = new Set(unresolved.map((u) => u.module))
  return new HwimageError(
    'KERNEL_UNRESOLVED',
    `Cannot use the module set for kernel ${tree.version}: ${unresolved.length} unresolved symbols in ${modules.size} modules (${first})`,
    { hint: 'add the modules that export them, or remove the modules that need them' },
  )
}

// Compressed firmware the kernel can load, from its config (Debian 6.1: xz only).
async function firmwareSuffixes(tree: KernelTree): Promise<string[]> {
  const config = tree.root
    ? await fs.readFile(path.join(tree.root, 'boot', `config-${tree.version}`), 'utf8').catch(() => '')
    : ''
  if (!config) return ['.xz']
  const out: string[] = []
  if (
    /^CONFIG_FW_LOADER_COMPRESS_XZ=y/m.test(config) ||
    (/^CONFIG_FW_LOADER_COMPRESS=y/m.test(config) && !/COMPRESS_XZ/.test(config))
  )
    out.push('.xz')
  if (/^CONFIG_FW_LOADER_COMPRESS_ZSTD=y/m.test(config)) out.push('.zst')
  return out
}
