// Boots one firmware × storage × NIC cell: makes its disks, boots the machine until
// the caller's condition or a dead end, judges the console, and removes the disks
// (the serial log stays). `hwimage boot` and each cell of `hwimage test` run this.

import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { QemuDisk } from '../tools/qemu.js'
import { bootMachine, type BootOptions, type BootResult } from './boot.js'
import type { ConsoleWatcher, Milestone, MilestoneKind } from './console-watch.js'
import { judgeBoot, type Verdict } from './judge-boot.js'

/** Past these, waiting longer changes nothing: the console shows a dead end. */
export const DEAD_ENDS: readonly MilestoneKind[] = ['no-boot-entry', 'root-missing', 'panic']

/** One cell's machine, how to make its disks, and when its boot is done. */
export interface BootCellOptions<R> {
  /** The machine without its disks: firmware, storage controller, NIC, memory, MAC, name. */
  machine: Omit<BootOptions['machine'], 'disks'>
  /** Makes the cell's disks (in workDir); they are removed after the boot unless keepDisks. */
  prepare: () => Promise<QemuDisk[]>
  /** An existing directory for the boot's files (serial.log, ovmf-vars.fd). */
  workDir: string
  timeoutMs: number
  /** Besides a dead end, what ends the boot; startedAt is when the boot began (ms since the epoch). */
  until: (console: ConsoleWatcher, startedAt: number) => boolean
  /**
   * For a cell that passes only on a report over the network: the report, once it
   * arrived. Read once when the boot ends; without it the cell passes at cloud-init's
   * final stage.
   */
  report?: () => R | undefined
  keepDisks?: boolean
  qemu?: string
  signal?: AbortSignal
  onMilestone?: (m: Milestone) => void
}

/** A cell's boot, the verdict on it, and the report it sent (when one was awaited). */
export interface CellBoot<R> {
  boot: BootResult
  verdict: Verdict
  report: R | undefined
}

/** Boots one cell and judges it. */
export async function bootCell<R = never>(opts: BootCellOptions<R>): Promise<CellBoot<R>> {
  let disks: QemuDisk[] = []
  try {
    disks = await opts.prepare()
    const startedAt = Date.now()
    const boot = await bootMachine({
      machine: { ...opts.machine, disks },
      workDir: opts.workDir,
      timeoutMs: opts.timeoutMs,
      done: (c) => DEAD_ENDS.some((k) => c.has(k)) || opts.until(c, startedAt),
      ...(opts.qemu ? { qemu: opts.qemu } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onMilestone ? { onMilestone: opts.onMilestone } : {}),
    })
    const report = opts.report?.()
    const verdict = judgeBoot(boot.console, {
      firmware: opts.machine.firmware,
      timedOut: boot.outcome === 'timeout',
      ...(opts.report ? { needReport: true, reportReceived: report !== undefined } : {}),
      ...(boot.qemuExit ? { qemuExit: boot.qemuExit } : {}),
    })
    return { boot, verdict, report }
  } finally {
    if (!opts.keepDisks) {
      for (const d of disks) await rm(d.path, { force: true })
      await rm(join(opts.workDir, 'ovmf-vars.fd'), { force: true })
    }
  }
}

/** Seconds rounded to a tenth, as the lab's results give them. */
export function tenths(seconds: number): number {
  return Math.round(seconds * 10) / 10
}
