// Parsers for the text indexes depmod(8) writes into /lib/modules/<version>:
// modules.dep, modules.alias, modules.softdep, modules.builtin, and the
// NUL-separated modules.builtin.modinfo the kernel build installs. Formats are
// those of kmod 30 (depmod.c output_deps, output_aliases, output_softdeps).

import { InputError } from '../errors.js'

/** One `alias PATTERN MODULE` line: a fnmatch glob and the module it loads. */
export interface ModuleAlias {
  pattern: string
  module: string
}

/** Soft dependencies of one module: loaded before (pre) and after (post) it. */
export interface SoftDeps {
  pre: string[]
  post: string[]
}

/** `kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz` → `e1000e`; dashes become underscores, as kmod does. */
export function moduleNameOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1)
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replaceAll('-', '_')
}

/** Normalises a module name the way modprobe does (`virtio-net` → `virtio_net`). */
export function normaliseModuleName(name: string): string {
  return name.trim().replaceAll('-', '_')
}

/** modules.dep: `path: dep-path dep-path …` → module path → its dependency paths, in load order. */
export function parseModulesDep(text: string, file = 'modules.dep'): Map<string, string[]> {
  const deps = new Map<string, string[]>()
  forEachLine(text, (line, n) => {
    const colon = line.indexOf(':')
    if (colon <= 0) throw badLine(file, n, line, 'expected "path: deps"')
    const path = line.slice(0, colon).trim()
    const rest = line.slice(colon + 1).trim()
    deps.set(path, rest ? rest.split(/\s+/) : [])
  })
  return deps
}

/** modules.alias: `alias PATTERN MODULE` lines. */
export function parseModulesAlias(text: string, file = 'modules.alias'): ModuleAlias[] {
  const out: ModuleAlias[] = []
  forEachLine(text, (line, n) => {
    const parts = line.split(/\s+/)
    if (parts.length !== 3 || parts[0] !== 'alias') throw badLine(file, n, line, 'expected "alias PATTERN MODULE"')
    out.push({ pattern: parts[1]!, module: normaliseModuleName(parts[2]!) })
  })
  return out
}

/**
 * modules.softdep: `softdep MODULE pre: A B post: C`. Names before any `pre:` or
 * `post:` are ignored, as kmod's config parser ignores them (the kernel's cifs
 * module declares such a malformed softdep).
 */
export function parseModulesSoftdep(text: string, file = 'modules.softdep'): Map<string, SoftDeps> {
  const out = new Map<string, SoftDeps>()
  forEachLine(text, (line, n) => {
    const parts = line.split(/\s+/)
    if (parts[0] !== 'softdep' || parts.length < 2)
      throw badLine(file, n, line, 'expected "softdep MODULE pre: … post: …"')
    const name = normaliseModuleName(parts[1]!)
    const entry = out.get(name) ?? { pre: [], post: [] }
    let mode: 'none' | 'pre' | 'post' = 'none'
    for (const token of parts.slice(2)) {
      if (token === 'pre:') mode = 'pre'
      else if (token === 'post:') mode = 'post'
      else if (mode !== 'none') entry[mode].push(token)
    }
    out.set(name, entry)
  })
  return out
}

/** modules.builtin: one `kernel/…/name.ko` path per line → module names built into vmlinuz. */
export function parseModulesBuiltin(text: string): Set<string> {
  const out = new Set<string>()
  forEachLine(text, (line) => out.add(moduleNameOf(line)))
  return out
}

/** modules.builtin.modinfo: NUL-separated `module.key=value` → the aliases of built-in drivers. */
export function parseBuiltinModinfo(text: string): { names: Set<string>; aliases: ModuleAlias[] } {
  const names = new Set<string>()
  const aliases: ModuleAlias[] = []
  for (const entry of text.split('\0')) {
    const dot = entry.indexOf('.')
    const eq = entry.indexOf('=')
    if (dot <= 0 || eq < dot) continue
    const module = normaliseModuleName(entry.slice(0, dot))
    names.add(module)
    if (entry.slice(dot + 1, eq) === 'alias') aliases.push({ pattern: entry.slice(eq + 1), module })
  }
  return { names, aliases }
}

function forEachLine(text: string, fn: (line: string, lineNumber: number) => void): void {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    fn(line, i + 1)
  }
}

function badLine(file: string, n: number, line: string, expected: string): InputError {
  const shown = line.length > 80 ? `${line.slice(0, 77)}...` : line
  return new InputError('FORMAT_KERNEL', `Cannot parse ${file} line ${n}: "${shown}" (${expected})`)
}
