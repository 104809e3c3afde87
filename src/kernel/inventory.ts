// Hardware inventories that coverage is measured against, recognised by content:
//   - `lspci -nnk` or `lspci -vvnnk` output (class code and [vendor:device] ids),
//   - a list of modaliases, one a line, as read from /sys (`cat /sys/bus/*/devices/*/modalias`,
//     or `grep . …/modalias` which prefixes each with its path),
//   - the device population table (`../shared/data/pci-device-population.md`):
//     `### <Class> (PCI)` sections of `| pci:vvvv-dddd | MFG | Name | Count |` rows.

import { InputError } from '../errors.js'
import type { PciId } from './alias-index.js'
import { classCodesOf, classNameOf } from './pci-classes.js'

/** One kind of device in an inventory, with how many of it there are. */
export interface InventoryDevice {
  /** What identifies it in reports: `pci:8086-2922`, or a full modalias. */
  id: string
  name: string
  /** Device class, population-table style ("Storage/ata", "Net/ethernet", "usb" …). */
  class: string
  count: number
  /** For ids only partly known (population table, lspci). */
  pci?: PciId
  /** For full modaliases (matched with fnmatch, as modprobe does). */
  modalias?: string
}

/** The inventory formats hwimage reads. */
export type InventoryFormat = 'lspci' | 'modalias' | 'population'

/** A parsed inventory file. */
export interface Inventory {
  source: string
  format: InventoryFormat
  devices: InventoryDevice[]
}

const LSPCI_DEVICE = /^(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\s/i
const LSPCI_NN =
  /^(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\s+(.*?)\s*\[([0-9a-f]{2})([0-9a-f]{2})\]:\s*(.*)\s\[([0-9a-f]{4}):([0-9a-f]{4})\](?:\s+\(rev [0-9a-f]+\))?(?:\s+\(prog-if ([0-9a-f]{2})(?:\s+\[[^\]]*\])?\))?\s*$/i
const LSPCI_SUBSYSTEM = /^\s+Subsystem:.*\[([0-9a-f]{4}):([0-9a-f]{4})\]\s*$/i
const MODALIAS_LINE = /^(?:\S*\/modalias:)?([a-z0-9_*-]+:\S*)$/i
const POPULATION_SECTION = /^###\s+(.+?)\s+\(PCI\)\s*$/
const POPULATION_ROW = /^\|\s*pci:([0-9a-f]{4})-([0-9a-f]{4})\s*\|\s*(.*?)\s*\|\s*(.*?)\s*\|\s*(\d+)\s*\|\s*$/i

/** Recognises and parses an inventory; throws FORMAT_INVENTORY naming `source` when the format is unknown. */
export function parseInventory(text: string, source: string): Inventory {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''))
  const content = lines.filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
  if (lines.some((l) => POPULATION_SECTION.test(l)) && lines.some((l) => POPULATION_ROW.test(l))) {
    return { source, format: 'population', devices: parsePopulation(lines) }
  }
  const first = content[0] ?? ''
  if (LSPCI_DEVICE.test(first)) return { source, format: 'lspci', devices: parseLspci(lines, source) }
  if (content.length > 0 && content.every((l) => MODALIAS_LINE.test(l.trim()))) {
    return { source, format: 'modalias', devices: parseModaliases(content) }
  }
  throw new InputError('FORMAT_INVENTORY', `Cannot read inventory "${source}": unknown format`, {
    hint: 'give `lspci -nnk` or `lspci -vvnnk` output, a list of modaliases (cat /sys/bus/*/devices/*/modalias), or the device population table',
  })
}

function parsePopulation(lines: string[]): InventoryDevice[] {
  const out: InventoryDevice[] = []
  let section: string | undefined
  for (const line of lines) {
    const s = POPULATION_SECTION.exec(line)
    if (s) {
      section = s[1]!
      continue
    }
    const r = POPULATION_ROW.exec(line)
    if (!r || section === undefined) continue
    const vendor = r[1]!.toUpperCase()
    const device = r[2]!.toUpperCase()
    const classes = classCodesOf(section)
    out.push({
      id: `pci:${vendor.toLowerCase()}-${device.toLowerCase()}`,
      name: `${r[3]} ${r[4]}`.trim(),
      class: section,
      count: Number(r[5]),
      pci: { vendor, device, ...(classes.length ? { classes } : {}) },
    })
  }
  return out
}

function parseLspci(lines: string[], source: string): InventoryDevice[] {
  const out: InventoryDevice[] = []
  let current: InventoryDevice | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (LSPCI_DEVICE.test(line)) {
      const m = LSPCI_NN.exec(line)
      if (!m) {
        throw new InputError(
          'FORMAT_INVENTORY',
          `Cannot read inventory "${source}": line ${i + 1} has no [class] and [vendor:device] codes`,
          {
            hint: 'run lspci with -nn (lspci -nnk or lspci -vvnnk)',
          },
        )
      }
      const [, className, base, sub, name, vendor, device, progIf] = m
      const code = {
        base: base!.toUpperCase(),
        sub: sub!.toUpperCase(),
        ...(progIf ? { progIf: progIf.toUpperCase() } : {}),
      }
      current = {
        id: `pci:${vendor!.toLowerCase()}-${device!.toLowerCase()}`,
        name: name!.trim() || className!.trim(),
        class: classNameOf(code.base, code.sub),
        count: 1,
        pci: { vendor: vendor!.toUpperCase(), device: device!.toUpperCase(), classes: [code] },
      }
      out.push(current)
      continue
    }
    const sub = LSPCI_SUBSYSTEM.exec(line)
    if (sub && current?.pci) {
      current.pci = { ...current.pci, subvendor: sub[1]!.toUpperCase(), subdevice: sub[2]!.toUpperCase() }
    }
  }
  return out
}

function parseModaliases(content: string[]): InventoryDevice[] {
  const counts = new Map<string, number>()
  for (const l of content) {
    const modalias = MODALIAS_LINE.exec(l.trim())![1]!
    counts.set(modalias, (counts.get(modalias) ?? 0) + 1)
  }
  return [...counts].map(([modalias, count]) => ({
    id: modalias,
    name: '',
    class: classOfModalias(modalias),
    count,
    modalias,
  }))
}

/** The class of a device from its modalias: PCI by class code, others by bus. */
export function classOfModalias(modalias: string): string {
  const pci =
    /^pci:v[0-9A-F]{8}d[0-9A-F]{8}sv[0-9A-F]{8}sd[0-9A-F]{8}bc([0-9A-F]{2})sc([0-9A-F]{2})i[0-9A-F]{2}$/i.exec(modalias)
  if (pci) return classNameOf(pci[1]!, pci[2]!)
  const colon = modalias.indexOf(':')
  return colon > 0 ? modalias.slice(0, colon) : 'other'
}
