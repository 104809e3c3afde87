// A lab run's finished cells on disk: each cell's result.json (its result and the image it
// was booted from), written as the cell finishes and read back by --resume; and the
// shape of one cell's result.

import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cellId } from './cell-id.js'
import type { MilestoneKind } from './console-watch.js'
import type { Cell } from './covering.js'
import type { Diagnosis } from './diagnose.js'
import type { Firmware } from '../tools/qemu.js'

/** One cell's outcome. */
export interface CellResult extends Cell<Firmware> {
  /** firmware--storage--nic, also the cell's directory under cells/. */
  id: string
  status: 'pass' | 'fail' | 'n/a'
  /** Why the cell is not applicable. */
  reason?: string
  /** Seconds from QEMU's start to the report (pass) or to the end of the boot (fail). */
  seconds?: number
  diagnosis?: Diagnosis
  /** The furthest milestone the console showed. */
  reached?: MilestoneKind
  milestones?: { kind: MilestoneKind; at: number }[]
  secureBoot?: 'enabled' | 'disabled' | 'unknown'
  kernelVersion?: string
  /** Root file system size from the console's `df` marker (it grows to the disk on first boot). */
  rootBytes?: number
  /** The console log, relative to the report directory. */
  serialLog?: string
  /** The report the machine sent (hwimage's first-boot report). */
  report?: unknown
  /** The QEMU command line, to boot the cell again by hand. */
  qemu?: string
  /** Set when the first boot failed the way TCG fails on an overloaded host and the cell was booted again. */
  retried?: { diagnosis: Diagnosis; serialLog: string }
  /** Set when the result was kept from an earlier run (--resume): when that run finished the cell. */
  resumedFrom?: string
}

/** A cell's result.json: the result and the image it was booted from. */
export interface StoredCell {
  image: ImageStamp
  finished: string
  result: CellResult
}

/** Which image a result belongs to: its path, size and modification time. */
export interface ImageStamp {
  path: string
  size: number
  mtimeMs: number
}

export async function imageStamp(path: string): Promise<ImageStamp> {
  const st = await stat(path)
  return { path, size: st.size, mtimeMs: Math.round(st.mtimeMs) }
}

/**
 * The finished results in reportDir of an earlier run of the same image, by cell id.
 * A result of another image (path, size or time differ) is not kept: the cell boots again.
 */
export async function finishedCells(
  reportDir: string,
  cells: readonly Cell<Firmware>[],
  image: ImageStamp,
): Promise<Map<string, CellResult>> {
  const out = new Map<string, CellResult>()
  for (const c of cells) {
    const id = cellId(c)
    const text = await readFile(join(reportDir, 'cells', id, 'result.json'), 'utf8').catch(() => undefined)
    if (text === undefined) continue
    let stored: StoredCell
    try {
      stored = JSON.parse(text) as StoredCell
    } catch {
      continue // a result.json cut short by the interruption: boot the cell again
    }
    const same =
      stored.image?.path === image.path && stored.image.size === image.size && stored.image.mtimeMs === image.mtimeMs
    if (same && stored.result?.id === id && (stored.result.status === 'pass' || stored.result.status === 'fail')) {
      out.set(id, { ...stored.result, resumedFrom: stored.finished })
    }
  }
  return out
}

/** Writes a finished cell's result.json beside its console log. */
export async function saveCell(reportDir: string, image: ImageStamp, result: CellResult): Promise<void> {
  const stored: StoredCell = { image, finished: new Date().toISOString(), result }
  await writeFile(join(reportDir, 'cells', result.id, 'result.json'), JSON.stringify(stored, null, 2) + '\n')
}
