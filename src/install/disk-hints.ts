// Choosing the target disk by what it is rather than by a kernel name that can change
// between boots: serial, WWN, model, vendor, size bounds — the "root device hints" of
// OpenStack Ironic (ironic-python-agent, hardware.match_root_device_hints). Exactly one
// disk must match; none or several is an error that lists the candidates.

import { DeviceError, UsageError } from '../errors.js'
import { run } from '../tools/run.js'

/** A disk as lsblk describes it. */
export interface DiskCandidate {
  name: string
  path: string
  size: number
  sectorSize: number
  type: string
  serial?: string
  wwn?: string
  model?: string
  vendor?: string
  hctl?: string
  rotational?: boolean
}

/** Parsed hints: every given one must match. */
export interface DiskHints {
  serial?: string
  wwn?: string
  model?: string
  vendor?: string
  name?: string
  hctl?: string
  type?: string
  rotational?: boolean
  minSize?: number
  maxSize?: number
}

/** "20G", "512M", "1.5T", "4096" → bytes (powers of 1024), as --disk-hint sizes are written. */
function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim())
  if (!m)
    throw new UsageError(`Cannot parse --disk-hint ${what}: "${text}" is not a size`, {
      hint: 'use a number with an optional K, M, G or T suffix (powers of 1024), e.g. 100G',
    })
  const unit = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[
    (m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ]
  return Math.round(Number(m[1]) * unit)
}

const STRING_KEYS = ['serial', 'wwn', 'model', 'vendor', 'name', 'hctl', 'type'] as const

/** Parses `key=value[,key=value…]` hints (repeatable); size takes `20G`, `>=100G`, `<=2T`. */
export function parseDiskHints(specs: string[]): DiskHints {
  const hints: DiskHints = {}
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      if (part.trim() === '') continue
      const eq = part.indexOf('=')
      if (eq <= 0)
        throw new UsageError(`Cannot parse --disk-hint "${part}": expected KEY=VALUE`, {
          hint: `keys: ${[...STRING_KEYS, 'rotational', 'size', 'min-size', 'max-size'].join(', ')}`,
        })
      const key = part.slice(0, eq).trim().toLowerCase().replace(/_/g, '-')
      const value = part.slice(eq + 1).trim()
      if ((STRING_KEYS as readonly string[]).includes(key))
        hints[key as (typeof STRING_KEYS)[number]] = key === 'name' ? value.replace(/^\/dev\//, '') : value
      else if (key === 'rotational') hints.rotational = /^(1|true|yes)$/i.test(value)
      else if (key === 'min-size') hints.minSize = parseSize(value, 'min-size')
      else if (key === 'max-size') hints.maxSize = parseSize(value, 'max-size')
      else if (key === 'size') {
        const m = /^(>=|<=|==)?\s*(.+)$/.exec(value)!
        const n = parseSize(m[2]!, 'size')
        if (m[1] !== '<=') hints.minSize = n
        if (m[1] !== '>=') hints.maxSize = n
      } else {
        throw new UsageError(`Cannot parse --disk-hint "${part}": unknown key "${key}"`, {
          hint: `keys: ${[...STRING_KEYS, 'rotational', 'size', 'min-size', 'max-size'].join(', ')}`,
        })
      }
    }
  }
  if (Object.keys(hints).length === 0) throw new UsageError('Cannot select a disk: --disk-hint is empty')
  return hints
}

const norm = (s: string | undefined): string => (s ?? '').trim().toLowerCase()

/** Whether a candidate satisfies every hint (strings: case-insensitive, whitespace-trimmed equality). */
export function matchesHints(d: DiskCandidate, h: DiskHints): boolean {
  if (
    h.type !== undefined
      ? norm(d.type) !== norm(h.type)
      : d.type !== 'disk' && !(h.name !== undefined && d.type === 'loop')
  )
    return false
  for (const k of ['serial', 'model', 'vendor', 'name', 'hctl'] as const) {
    if (h[k] !== undefined && norm(d[k]) !== norm(h[k])) return false
  }
  // WWN: lsblk prints "0x5000c500a1b2c3d4"; Ironic hints are given with or without the 0x.
  if (h.wwn !== undefined && norm(d.wwn).replace(/^0x/, '') !== norm(h.wwn).replace(/^0x/, '')) return false
  if (h.rotational !== undefined && d.rotational !== h.rotational) return false
  if (h.minSize !== undefined && d.size < h.minSize) return false
  if (h.maxSize !== undefined && d.size > h.maxSize) return false
  return true
}

/** One line describing a candidate, for error messages and --dry-run. */
export function describeDisk(d: DiskCandidate): string {
  const ids = [
    d.model && `model "${d.model}"`,
    d.vendor && `vendor "${d.vendor}"`,
    d.serial && `serial "${d.serial}"`,
    d.wwn && `wwn ${d.wwn}`,
  ]
    .filter(Boolean)
    .join(', ')
  return `${d.path} (${(d.size / 2 ** 30).toFixed(1)} GiB, ${d.type}${ids ? `, ${ids}` : ''})`
}

/** The one candidate matching the hints; throws DEVICE_SELECT listing the candidates otherwise. */
export function selectDisk(candidates: DiskCandidate[], hints: DiskHints): DiskCandidate {
  const usable = candidates.filter((d) => d.size > 0)
  const matches = usable.filter((d) => matchesHints(d, hints))
  if (matches.length === 1) return matches[0]!
  const list = (matches.length ? matches : usable).map(describeDisk).join('; ')
  if (matches.length === 0) {
    throw new DeviceError(
      'DEVICE_SELECT',
      `Cannot select a disk: no disk matches the hints ${JSON.stringify(hints)}; disks: ${list || 'none'}`,
      { hint: 'adjust --disk-hint, or name the disk with --disk' },
    )
  }
  throw new DeviceError(
    'DEVICE_SELECT',
    `Cannot select a disk: ${matches.length} disks match the hints ${JSON.stringify(hints)}: ${list}`,
    { hint: 'add a hint that tells them apart (serial, wwn), or name the disk with --disk' },
  )
}

/** lsblk argv listing whole devices with the identity columns the hints use. */
export function lsblkArgv(): string[] {
  return [
    'lsblk',
    '--json',
    '--bytes',
    '--nodeps',
    '--output',
    'NAME,PATH,SIZE,LOG-SEC,TYPE,SERIAL,WWN,MODEL,VENDOR,HCTL,ROTA',
  ]
}

/** Parses `lsblk --json` output from lsblkArgv(). */
export function parseLsblk(json: string): DiskCandidate[] {
  const doc = JSON.parse(json) as { blockdevices?: Array<Record<string, unknown>> }
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined)
  return (doc.blockdevices ?? []).map((b) => {
    const d: DiskCandidate = {
      name: String(b.name),
      path: str(b.path) ?? `/dev/${String(b.name)}`,
      size: Number(b.size ?? 0),
      sectorSize: Number(b['log-sec'] ?? 512),
      type: String(b.type ?? ''),
    }
    for (const k of ['serial', 'wwn', 'model', 'vendor', 'hctl'] as const) {
      const v = str(b[k])
      if (v !== undefined) d[k] = v
    }
    if (typeof b.rota === 'boolean') d.rotational = b.rota
    else if (b.rota === '1' || b.rota === '0') d.rotational = b.rota === '1'
    return d
  })
}

/** The machine's disks, from lsblk. */
export async function listDisks(signal?: AbortSignal): Promise<DiskCandidate[]> {
  return parseLsblk((await run(lsblkArgv(), { signal })).stdout)
}
