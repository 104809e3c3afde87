// What changed between two builds of a product, from their manifests: packages added,
// removed and upgraded (with versions), the kernel (version, footprint, modules), the
// spec and hwimage's version. `hwimage cycle` writes it as CHANGELOG beside the new serial.

import type { Manifest } from '../build/manifest.js'

/** The differences between the previous build of a product and the new one. */
export interface Changes {
  previous?: { serial: string; hwimageVersion: string; kernelVersion: string }
  serial: string
  packages: {
    added: { name: string; version: string }[]
    removed: { name: string; version: string }[]
    upgraded: { name: string; from: string; to: string }[]
  }
  kernel: {
    from?: string
    to: string
    footprintBytes: { from?: number; to: number }
    modulesAdded: string[]
    modulesRemoved: string[]
  }
  specChanged: boolean
  hwimage: { from?: string; to: string }
}

/** Compares two manifests (`previous` absent for a product's first build). */
export function diffBuilds(
  previous: { serial: string; manifest: Manifest } | undefined,
  serial: string,
  next: Manifest,
): Changes {
  const old = previous?.manifest
  const before = old?.packages ?? {}
  const after = next.packages
  const names = (o: Record<string, string>) => Object.keys(o).sort()
  const oldModules = new Set(old?.kernel.modules ?? [])
  const newModules = new Set(next.kernel.modules)
  return {
    ...(previous && old
      ? {
          previous: { serial: previous.serial, hwimageVersion: old.hwimage.version, kernelVersion: old.kernel.version },
        }
      : {}),
    serial,
    packages: {
      added: names(after)
        .filter((n) => !(n in before))
        .map((name) => ({ name, version: after[name]! })),
      removed: names(before)
        .filter((n) => !(n in after))
        .map((name) => ({ name, version: before[name]! })),
      upgraded: names(after)
        .filter((n) => n in before && before[n] !== after[n])
        .map((name) => ({ name, from: before[name]!, to: after[name]! })),
    },
    kernel: {
      ...(old ? { from: old.kernel.version } : {}),
      to: next.kernel.version,
      footprintBytes: { ...(old ? { from: old.kernel.footprintBytes } : {}), to: next.kernel.footprintBytes },
      modulesAdded: old ? [...newModules].filter((m) => !oldModules.has(m)).sort() : [],
      modulesRemoved: old ? [...oldModules].filter((m) => !newModules.has(m)).sort() : [],
    },
    specChanged: old ? old.inputs?.specSha256 !== next.inputs?.specSha256 : false,
    hwimage: { ...(old ? { from: old.hwimage.version } : {}), to: next.hwimage.version },
  }
}

/** The CHANGELOG text: one section per kind of change, "none" where nothing changed. */
export function formatChangelog(product: string, c: Changes): string {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`
  const lines = [
    `${product} ${c.serial}`,
    c.previous ? `changes since ${c.previous.serial}` : 'first build of the product',
    '',
  ]
  const section = (title: string, rows: string[]) => {
    lines.push(`${title}:`, ...(rows.length ? rows.map((r) => `  ${r}`) : ['  none']), '')
  }
  if (c.previous) {
    section(
      'packages upgraded',
      c.packages.upgraded.map((p) => `${p.name} ${p.from} -> ${p.to}`),
    )
    section(
      'packages added',
      c.packages.added.map((p) => `${p.name} ${p.version}`),
    )
    section(
      'packages removed',
      c.packages.removed.map((p) => `${p.name} ${p.version}`),
    )
  } else {
    section(
      'packages',
      c.packages.added.map((p) => `${p.name} ${p.version}`),
    )
  }
  const k = c.kernel
  const kernelRows: string[] = []
  if (k.from === undefined) kernelRows.push(`${k.to} (${mib(k.footprintBytes.to)} installed)`)
  else {
    if (k.from !== k.to) kernelRows.push(`version ${k.from} -> ${k.to}`)
    if (k.footprintBytes.from !== k.footprintBytes.to)
      kernelRows.push(`footprint ${mib(k.footprintBytes.from ?? 0)} -> ${mib(k.footprintBytes.to)}`)
    if (k.modulesAdded.length) kernelRows.push(`modules added: ${k.modulesAdded.join(' ')}`)
    if (k.modulesRemoved.length) kernelRows.push(`modules removed: ${k.modulesRemoved.join(' ')}`)
  }
  section('kernel', kernelRows)
  const other: string[] = []
  if (c.specChanged) other.push('the spec changed')
  if (c.hwimage.from !== undefined && c.hwimage.from !== c.hwimage.to)
    other.push(`hwimage ${c.hwimage.from} -> ${c.hwimage.to}`)
  if (c.previous) section('build', other)
  return lines.join('\n')
}
