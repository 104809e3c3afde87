// From a policy to a set of modules: pick modules by subsystem, by the devices
// they drive, and by name; apply an image spec's additions and removals; close the
// set under modules.dep (hard dependencies) and modules.softdep (soft ones), so
// every module in it can load. Pure: reads only the KernelTree.

import { InputError } from '../errors.js'
import type { KernelTree } from './kernel-package.js'
import { globMatches, hasGlobChars } from './module-glob.js'
import { normaliseModuleName } from './module-indexes.js'
import { AliasIndex } from './alias-index.js'

/** One rule of a module policy. Every rule says why, for the reader of the policy. */
export type PolicyRule =
  /** Every module under kernel/<under>/ (a directory prefix). */
  | { kind: 'subsystem'; under: string; why: string }
  /** Modules under kernel/<under>/ that drive a device on `bus` (have a `bus:` alias): device drivers, not libraries or protocols. */
  | { kind: 'drivers'; bus: string; under: string; why: string }
  /** Modules by name; a name may be an fnmatch glob (virtio_*). */
  | { kind: 'modules'; names: readonly string[]; why: string }
  /** Modules not to select for themselves (still pulled in when a selected module needs them). */
  | { kind: 'exclude'; names?: readonly string[]; under?: string; why: string }

/** A named list of rules. */
export interface ModulePolicy {
  name: string
  rules: readonly PolicyRule[]
}

/** An image spec's changes to a policy's module set. */
export interface ModuleExtras {
  add?: readonly string[]
  remove?: readonly string[]
}

/** A resolved module set, with why each module is in it. */
export interface ResolvedModuleSet {
  modules: Set<string>
  /** Module → the rule, addition or dependency that brought it in. */
  reasons: Map<string, string>
  /** Modules taken out because a removed module is their dependency. */
  dropped: { module: string; because: string }[]
  /** Exact names the policy asks for that this kernel has neither as module nor built in. */
  missingFromKernel: string[]
  /** Names asked for that are built into vmlinuz (always present). */
  builtinRequested: string[]
}

/** Applies a policy and extras to a kernel, closed under dependencies. Throws MODULE_UNKNOWN for unknown names in extras. */
export function resolveModuleSet(tree: KernelTree, policy: ModulePolicy, extras: ModuleExtras = {}): ResolvedModuleSet {
  const reasons = new Map<string, string>()
  const missing: string[] = []
  const builtinRequested: string[] = []
  const take = (name: string, why: string) => {
    if (!reasons.has(name)) reasons.set(name, why)
  }
  const excluded = new Set<string>()
  let pciOrBus: Map<string, Set<string>> | undefined
  for (const rule of policy.rules) {
    if (rule.kind === 'subsystem') {
      for (const m of modulesUnder(tree, rule.under)) take(m, `${policy.name}: ${rule.under}`)
    } else if (rule.kind === 'drivers') {
      pciOrBus ??= modulesByBus(tree)
      const onBus = pciOrBus.get(rule.bus) ?? new Set()
      for (const m of modulesUnder(tree, rule.under))
        if (onBus.has(m)) take(m, `${policy.name}: ${rule.bus} drivers in ${rule.under}`)
    } else if (rule.kind === 'modules') {
      for (const pattern of rule.names) {
        const found = matchNames(tree, pattern)
        if (found.length === 0 && !hasGlobChars(pattern)) {
          if (tree.builtin.has(normaliseModuleName(pattern))) builtinRequested.push(normaliseModuleName(pattern))
          else missing.push(pattern)
        }
        for (const m of found) take(m, `${policy.name}: ${pattern}`)
      }
    } else {
      for (const m of rule.under ? modulesUnder(tree, rule.under) : []) excluded.add(m)
      for (const pattern of rule.names ?? []) for (const m of matchNames(tree, pattern)) excluded.add(m)
    }
  }
  for (const m of excluded) reasons.delete(m)

  const added = new Set<string>()
  for (const raw of extras.add ?? []) {
    const name = checkKnown(tree, raw, 'add')
    if (tree.modules.has(name)) {
      added.add(name)
      reasons.set(name, 'added by the spec')
    } else builtinRequested.push(name)
  }
  const removed = new Set<string>()
  for (const raw of extras.remove ?? []) {
    const name = checkKnown(tree, raw, 'remove')
    if (!tree.modules.has(name)) {
      throw new InputError('SPEC_INVALID', `Cannot remove module "${raw}": it is built into vmlinuz ${tree.version}`)
    }
    removed.add(name)
  }

  const modules = closeUnderDependencies(tree, new Set(reasons.keys()), reasons)
  const dropped: { module: string; because: string }[] = []
  for (const r of removed) {
    if (modules.delete(r)) dropped.push({ module: r, because: 'removed by the spec' })
    reasons.delete(r)
  }
  // A module whose hard dependency was removed cannot load: drop it too.
  for (const m of [...modules]) {
    const gone = tree.modules.get(m)!.deps.find((d) => removed.has(d))
    if (!gone) continue
    if (added.has(m))
      throw new InputError('SPEC_INVALID', `Cannot remove module "${gone}": added module "${m}" needs it`)
    modules.delete(m)
    reasons.delete(m)
    dropped.push({ module: m, because: `needs removed module ${gone}` })
  }
  return { modules, reasons, dropped, missingFromKernel: missing, builtinRequested }
}

/**
 * Adds every module the set needs: modules.dep dependencies and softdeps (a
 * softdep may name an alias, such as crypto-crc32c, resolved as modprobe would).
 * Records the first reason for each module added.
 */
export function closeUnderDependencies(
  tree: KernelTree,
  start: Iterable<string>,
  reasons?: Map<string, string>,
): Set<string> {
  const out = new Set<string>()
  const queue = [...start]
  let aliasIndex: AliasIndex | undefined
  while (queue.length > 0) {
    const name = queue.shift()!
    if (out.has(name)) continue
    const mod = tree.modules.get(name)
    if (!mod) continue
    out.add(name)
    for (const d of mod.deps) {
      if (!out.has(d)) {
        if (reasons && !reasons.has(d)) reasons.set(d, `dependency of ${name}`)
        queue.push(d)
      }
    }
    const soft = tree.softdeps.get(name)
    for (const s of soft ? [...soft.pre, ...soft.post] : []) {
      const n = normaliseModuleName(s)
      let targets: string[]
      if (tree.modules.has(n)) targets = [n]
      else {
        aliasIndex ??= new AliasIndex(tree.aliases)
        targets = [...aliasIndex.modulesForModalias(s)]
      }
      for (const t of targets) {
        if (!out.has(t)) {
          if (reasons && !reasons.has(t)) reasons.set(t, `softdep of ${name}`)
          queue.push(t)
        }
      }
    }
  }
  return out
}

/** Modules whose path is under kernel/<dir>/ (or is kernel/<dir>.ko). */
export function modulesUnder(tree: KernelTree, dir: string): string[] {
  const prefix = `kernel/${dir.replace(/^\/+|\/+$/g, '')}/`
  return [...tree.modules.values()].filter((m) => m.path.startsWith(prefix)).map((m) => m.name)
}

function matchNames(tree: KernelTree, pattern: string): string[] {
  const p = normaliseModuleName(pattern)
  if (!hasGlobChars(p)) return tree.modules.has(p) ? [p] : []
  return [...tree.modules.keys()].filter((n) => globMatches(p, n))
}

function modulesByBus(tree: KernelTree): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const a of tree.aliases) {
    const colon = a.pattern.indexOf(':')
    if (colon <= 0) continue
    const bus = a.pattern.slice(0, colon)
    let set = out.get(bus)
    if (!set) out.set(bus, (set = new Set()))
    set.add(a.module)
  }
  return out
}

/** Checks that a module name from a spec or the command line exists in the kernel (as module or built in). */
export function checkKnown(tree: KernelTree, raw: string, what: string): string {
  const name = normaliseModuleName(raw)
  if (tree.modules.has(name) || tree.builtin.has(name)) return name
  const near = [...tree.modules.keys()].filter((n) => n.includes(name) || name.includes(n)).slice(0, 3)
  throw new InputError('MODULE_UNKNOWN', `Cannot ${what} module "${raw}": kernel ${tree.version} has no such module`, {
    hint: near.length
      ? `did you mean ${near.map((n) => `"${n}"`).join(', ')}?`
      : 'list the modules with `hwimage kernel analyze KERNEL --json`',
  })
}
