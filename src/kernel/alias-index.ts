// Which modules drive a device: an index over modules.alias (and the aliases of
// built-in drivers) answering two kinds of question.
//
// 1. A full modalias string, as read from /sys/…/modalias: matched with fnmatch
//    against every pattern, exactly as modprobe does.
// 2. A PCI id that is only partly known (the population table gives vendor and
//    device; lspci gives class but, without -v, no programming interface). PCI
//    aliases are written by the kernel's scripts/mod/file2alias.c as
//    `pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X*`, each field either hex or `*`,
//    so they are parsed into fields and compared one by one. A field the device
//    does not know (subvendor, subdevice, programming interface) matches any
//    value: the question is "does some device with this id get a driver", and the
//    same rule applies to the full kernel and to a subset, so shares stay fair.
//    Class is stricter: an alias naming a base class or subclass matches only a
//    device whose base class and subclass are known and equal (otherwise yenta_socket's
//    `bc06sc07` CardBus alias would claim every bridge); only the programming
//    interface is treated as unknown-matches-any, as lspci -nn does not print it.

import { globToRegExp, hasGlobChars } from './module-glob.js'
import type { ModuleAlias } from './module-indexes.js'

/** What is known of a PCI function. Hex strings, upper case; absent = unknown. */
export interface PciId {
  vendor: string
  device: string
  subvendor?: string
  subdevice?: string
  /** Candidate class codes: base class, and if known subclass and programming interface. */
  classes?: readonly PciClassCode[]
}

/** A PCI class code: base class (2 hex digits), subclass and programming interface when known. */
export interface PciClassCode {
  base: string
  sub?: string
  progIf?: string
}

interface PciAliasFields {
  module: string
  vendor: string | null
  device: string | null
  subvendor: string | null
  subdevice: string | null
  base: string | null
  sub: string | null
  progIf: string | null
}

const PCI_ALIAS =
  /^pci:v([0-9A-F]{8}|\*)d([0-9A-F]{8}|\*)sv([0-9A-F]{8}|\*)sd([0-9A-F]{8}|\*)bc([0-9A-F]{2}|\*)sc([0-9A-F]{2}|\*)i([0-9A-F]{2}|\*)\*?$/

/** Parses a PCI alias pattern into fields (null = any); undefined if it is not in file2alias form. */
export function parsePciAlias(pattern: string, module = ''): PciAliasFields | undefined {
  const m = PCI_ALIAS.exec(pattern)
  if (!m) return undefined
  const f = (s: string | undefined) => (s === '*' || s === undefined ? null : s)
  return {
    module,
    vendor: f(m[1]),
    device: f(m[2]),
    subvendor: f(m[3]),
    subdevice: f(m[4]),
    base: f(m[5]),
    sub: f(m[6]),
    progIf: f(m[7]),
  }
}

/** `8086` → `00008086`: the width file2alias prints vendor and device ids with. */
function wide(id: string): string {
  return id.toUpperCase().padStart(8, '0')
}

/** An index of module aliases for fast lookups by modalias or by PCI id. */
export class AliasIndex {
  private readonly pciByVendor = new Map<string, PciAliasFields[]>()
  private readonly pciAnyVendor: PciAliasFields[] = []
  private readonly pciOdd: ModuleAlias[] = []
  private readonly byBus = new Map<string, ModuleAlias[]>()
  private readonly anyBus: ModuleAlias[] = []

  constructor(aliases: Iterable<ModuleAlias>) {
    for (const a of aliases) {
      if (a.pattern.startsWith('pci:')) {
        const p = parsePciAlias(a.pattern, a.module)
        if (!p) this.pciOdd.push(a)
        else if (p.vendor === null) this.pciAnyVendor.push(p)
        else push(this.pciByVendor, p.vendor, p)
        continue
      }
      const colon = a.pattern.indexOf(':')
      const bus = colon > 0 ? a.pattern.slice(0, colon) : ''
      if (bus && !hasGlobChars(bus)) push(this.byBus, bus, a)
      else this.anyBus.push(a)
    }
  }

  /** Modules whose aliases match a full modalias string (modprobe's fnmatch rule). */
  modulesForModalias(modalias: string): Set<string> {
    const out = new Set<string>()
    const colon = modalias.indexOf(':')
    const bus = colon > 0 ? modalias.slice(0, colon) : ''
    if (bus === 'pci') {
      const vendor = /^pci:v([0-9A-Fa-f]{8})/.exec(modalias)?.[1]?.toUpperCase()
      const candidates = [...(vendor ? (this.pciByVendor.get(vendor) ?? []) : []), ...this.pciAnyVendor]
      for (const p of candidates) if (pciFieldsMatchModalias(p, modalias)) out.add(p.module)
      for (const a of this.pciOdd) if (globToRegExp(a.pattern).test(modalias)) out.add(a.module)
    } else {
      for (const a of this.byBus.get(bus) ?? []) if (globToRegExp(a.pattern).test(modalias)) out.add(a.module)
    }
    for (const a of this.anyBus) if (globToRegExp(a.pattern).test(modalias)) out.add(a.module)
    return out
  }

  /** Modules with a PCI alias matching a partly known PCI id (unknown fields match anything). */
  modulesForPci(id: PciId): Set<string> {
    const out = new Set<string>()
    const vendor = wide(id.vendor)
    const device = wide(id.device)
    const candidates = [...(this.pciByVendor.get(vendor) ?? []), ...this.pciAnyVendor]
    for (const p of candidates) {
      if (p.device !== null && p.device !== device) continue
      if (p.subvendor !== null && id.subvendor !== undefined && p.subvendor !== wide(id.subvendor)) continue
      if (p.subdevice !== null && id.subdevice !== undefined && p.subdevice !== wide(id.subdevice)) continue
      if (!classMatches(p, id.classes)) continue
      out.add(p.module)
    }
    return out
  }
}

function classMatches(p: PciAliasFields, classes: readonly PciClassCode[] | undefined): boolean {
  if (p.base === null && p.sub === null && p.progIf === null) return true
  if (!classes || classes.length === 0) return false
  return classes.some(
    (c) =>
      (p.base === null || p.base === c.base.toUpperCase()) &&
      (p.sub === null || (c.sub !== undefined && p.sub === c.sub.toUpperCase())) &&
      (p.progIf === null || c.progIf === undefined || p.progIf === c.progIf.toUpperCase()),
  )
}

// A full PCI modalias has every field; compare the parsed alias fields against it.
const PCI_MODALIAS =
  /^pci:v([0-9A-F]{8})d([0-9A-F]{8})sv([0-9A-F]{8})sd([0-9A-F]{8})bc([0-9A-F]{2})sc([0-9A-F]{2})i([0-9A-F]{2})$/i

function pciFieldsMatchModalias(p: PciAliasFields, modalias: string): boolean {
  const m = PCI_MODALIAS.exec(modalias)
  if (!m) return false
  const v = m.slice(1).map((s) => s.toUpperCase())
  const want = [p.vendor, p.device, p.subvendor, p.subdevice, p.base, p.sub, p.progIf]
  return want.every((w, i) => w === null || w === v[i])
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}
