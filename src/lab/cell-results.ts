// A lab run's finished cells on disk: each cell's result.json (its result and the image it
// was booted from), written as the cell finishes and read back by --resume.

import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Cell } from './covering.js'
import { cellId, type CellResult } from './matrix.js'
import type { Firmware } from '../tools/qemu.js'

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
export async function finishedCells(reportDir: string, cells: readonly Cell<Firmware>[], image: ImageStamp): Promise<Map<string, CellResult>> {
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
    const same = stored.image?.path === image.path && stored.image.size === image.size && stored.image.mtimeMs === image.mtimeMs
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
