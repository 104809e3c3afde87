// An image's hardware-lab results for the dashboard: the report.json `hwimage test IMAGE_DIR
// --report IMAGE_DIR/lab-report` writes (src/lab/matrix.ts MatrixResult), found by that
// convention beside the build's outputs, cut down to the grid — firmware × storage × NIC,
// each cell's status, time and diagnosis — without the consoles, milestones and reports.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { MatrixResult } from '../lab/matrix.js'

/** Where serve looks for an image's lab report, below its build directory. */
export const LAB_REPORT_PATH = path.join('lab-report', 'report.json')

/** A full matrix of 3 firmwares × 10 controllers × 10 NICs is ~1 MB: a report larger than this is not read. */
export const MAX_LAB_REPORT_BYTES = 32 * 1024 * 1024

/** One cell of the grid. */
export interface LabCell {
  firmware: string
  storage: string
  nic: string
  status: 'pass' | 'fail' | 'n/a'
  seconds?: number
  reason?: string
  diagnosis?: { code: string; summary: string }
  secureBoot?: string
  reached?: string
}

/** The grid of one lab run. */
export interface LabGrid {
  started: string
  seconds: number
  mode: string
  image: { name?: string; kernelFlavor?: string; kernelVersion?: string }
  summary: { pass: number; fail: number; notApplicable: number }
  firmwares: string[]
  storages: string[]
  nics: string[]
  cells: LabCell[]
}

/** The grid of a lab report's text (pure); throws saying why when the text is not one. */
export function labGrid(text: string): LabGrid {
  let r: MatrixResult
  try {
    r = JSON.parse(text) as MatrixResult
  } catch (e) {
    throw new Error(`Cannot read the lab report: ${(e as Error).message}`)
  }
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string')
  if (!r || !strings(r.firmwares) || !strings(r.storages) || !strings(r.nics) || !Array.isArray(r.cells) || !r.summary)
    throw new Error('Cannot read the lab report: it is not a `hwimage test` report.json')
  return {
    started: String(r.started),
    seconds: Number(r.seconds),
    mode: String(r.mode),
    image: { name: r.image?.name, kernelFlavor: r.image?.kernelFlavor, kernelVersion: r.image?.kernelVersion },
    summary: { pass: r.summary.pass, fail: r.summary.fail, notApplicable: r.summary.notApplicable },
    firmwares: r.firmwares,
    storages: r.storages,
    nics: r.nics,
    cells: r.cells.map((c) => ({
      firmware: c.firmware,
      storage: c.storage,
      nic: c.nic,
      status: c.status,
      ...(c.seconds !== undefined ? { seconds: c.seconds } : {}),
      ...(c.reason !== undefined ? { reason: c.reason } : {}),
      ...(c.diagnosis ? { diagnosis: { code: c.diagnosis.code, summary: c.diagnosis.summary } } : {}),
      ...(c.secureBoot !== undefined ? { secureBoot: c.secureBoot } : {}),
      ...(c.reached !== undefined ? { reached: c.reached } : {}),
    })),
  }
}

/** The lab grid of an image directory, null when it has no report; an error message when the report cannot be read. */
export async function readLabGrid(imageDir: string): Promise<{ lab: LabGrid | null; error?: string }> {
  const file = path.join(imageDir, LAB_REPORT_PATH)
  const st = await fsp.stat(file).catch(() => undefined)
  if (!st?.isFile()) return { lab: null }
  if (st.size > MAX_LAB_REPORT_BYTES)
    return {
      lab: null,
      error: `Cannot read the lab report: it is ${st.size} bytes, the limit is ${MAX_LAB_REPORT_BYTES}`,
    }
  try {
    return { lab: labGrid(await fsp.readFile(file, 'utf8')) }
  } catch (e) {
    return { lab: null, error: (e as Error).message }
  }
}
