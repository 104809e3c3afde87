// A machine as the database holds it (Row) and as the API shows it (MachineRecord: no
// token, no seed text, the JSON columns parsed), and a machine's events.

import type { Inventory } from '../../deploy/inventory-types.js'
import type { MachineState } from '../machine-states.js'

/** A machine as the API shows it (no token, no seed text). */
export interface MachineRecord {
  mac: string
  name: string
  state: MachineState
  image: string | null
  hasSeed: boolean
  diskHints: string[]
  source: string
  inventory: Inventory | null
  installReport: unknown
  firstBootReport: unknown
  progress: unknown
  error: unknown
  /** When the machine entered each state it has been in (ISO 8601), latest entry per state. */
  stateTimes: Partial<Record<MachineState, string>>
  created: string
  updated: string
}

/** One event of a machine. */
export interface MachineEvent {
  id: number
  mac: string
  time: string
  kind: string
  fields: Record<string, unknown>
}

/** A machines row, as SQLite returns it. */
export interface Row {
  mac: string
  name: string
  state: MachineState
  image: string | null
  seed_yaml: string | null
  disk_hints: string
  source: string
  generation: number
  inventory: string | null
  install_report: string | null
  first_boot_report: string | null
  progress: string | null
  error: string | null
  state_times: string
  created: string
  updated: string
}

/** An events row, as SQLite returns it. */
export interface EventRow {
  id: number
  mac: string
  time: string
  kind: string
  fields: string
}

/** The API's view of a row. */
export function toRecord(row: Row): MachineRecord {
  const j = (s: string | null): unknown => (s === null ? null : JSON.parse(s))
  return {
    mac: row.mac,
    name: row.name,
    state: row.state,
    image: row.image,
    hasSeed: row.seed_yaml !== null,
    diskHints: JSON.parse(row.disk_hints) as string[],
    source: row.source,
    inventory: j(row.inventory) as Inventory | null,
    installReport: j(row.install_report),
    firstBootReport: j(row.first_boot_report),
    progress: j(row.progress),
    error: j(row.error),
    stateTimes: JSON.parse(row.state_times) as Partial<Record<MachineState, string>>,
    created: row.created,
    updated: row.updated,
  }
}

/** An event row with its fields parsed. */
export function toEvent(r: EventRow): MachineEvent {
  return { ...r, fields: JSON.parse(r.fields) as Record<string, unknown> }
}
