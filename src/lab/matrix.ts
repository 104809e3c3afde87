// The hardware lab: an image booted across firmware × storage controller × NIC
// cells. Each cell gets a fresh target disk — the image installed by the real
// installer, with a seed partition whose report URL points at a listener the lab runs; the cell passes when that report arrives over the cell's
// NIC — proof that firmware, bootloader, kernel, storage driver, NIC driver and
// cloud-init all worked. A failed cell says where it stopped, from its console.

import { mkdir, rename, rm } from 'node:fs/promises'
import { finishedCells, imageStamp, saveCell, type CellResult } from './cell-results.js'
import { cellId } from './cell-id.js'
import { join, relative, resolve } from 'node:path'
import { listenForReports, type ReceivedReport } from '../seed/report-listener.js'
import { classifyNic, classifyStorage, loadDeviceCatalog, type StorageDevice } from '../tools/qemu-devices.js'
import { macAddressFor, type Firmware, type QemuDisk } from '../tools/qemu.js'
import { quoteArgv } from '../tools/run.js'
import { bootCell, tenths } from './boot-cell.js'
import type { ConsoleWatcher, MilestoneKind } from './console-watch.js'
import { allCells, coveringCells, type Cell } from './covering.js'
import type { Diagnosis } from './diagnose.js'
import { firmwareSupport, type FirmwareSupport } from './firmware-support.js'
import { storageEmulationGap } from './emulation-gaps.js'
import { resolveLabImage, type LabImage } from './image-source.js'
import { labSeed } from './lab-seed.js'
import { prepareLabDisks } from './prepare-disk.js'
import { installPreparer } from './install-preparer.js'
import type { Seed } from '../seed/seed-schema.js'

/** Makes one cell's disks (target disk with the image and seed): the step the installer will take over. */
export type DiskPreparer = (ctx: {
  image: LabImage
  cell: Cell<Firmware>
  workDir: string
  seed: Seed
  sizeBytes: bigint
  signal?: AbortSignal
}) => Promise<QemuDisk[]>

/** The overlay preparer: a qcow2 overlay over the image plus a seed volume disk (fast; the image is not installed). */
export const overlayPreparer: DiskPreparer = (ctx) =>
  prepareLabDisks({
    image: ctx.image,
    workDir: ctx.workDir,
    sizeBytes: ctx.sizeBytes,
    seed: { kind: 'seed', seed: ctx.seed },
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  })

/** What the lab runs. */
export interface MatrixOptions {
  /** An image file or a build output directory. */
  image: string
  firmwares: readonly Firmware[]
  storages: readonly string[]
  nics: readonly string[]
  cells: 'covering' | 'all'
  jobs: number
  timeoutMs: number
  memoryMiB: number
  /** Also boot cells on devices QEMU emulates too loosely to test (emulation-gaps.ts). */
  runGaps?: boolean
  /** Target disk size (default 8 GiB). */
  diskSizeBytes?: bigint
  /** Where report.json, the page and each cell's console log and result.json go. */
  reportDir: string
  /**
   * Keep the cells an earlier, interrupted run of the same image already finished in
   * reportDir (their cells/ID/result.json) and boot only the rest.
   */
  resume?: boolean
  /** How each cell's target disk is made (default: installPreparer, the real installer with the seed). */
  prepare?: DiskPreparer
  /** The QEMU binary (tests use a stand-in). */
  qemu?: string
  signal?: AbortSignal
  onEvent?: (e: MatrixEvent) => void
}

/** Progress of a lab run. */
export type MatrixEvent =
  | { type: 'start'; cells: number; boots: number; resumed: number; jobs: number; listen: string }
  | { type: 'cell-start'; id: string; index: number; boots: number }
  | { type: 'milestone'; id: string; kind: MilestoneKind; at: number }
  | { type: 'cell-done'; result: CellResult; done: number; boots: number }

/** A whole lab run: what report.json holds. */
export interface MatrixResult {
  image: { path: string; name?: string; kernelFlavor?: string; kernelVersion?: string }
  mode: 'covering' | 'all'
  firmwares: Firmware[]
  storages: string[]
  nics: string[]
  jobs: number
  memoryMiB: number
  timeoutSeconds: number
  started: string
  seconds: number
  summary: { pass: number; fail: number; notApplicable: number }
  cells: CellResult[]
  /** Set when the run was interrupted: how many of the planned boots finished (their cells are in `cells`). */
  interrupted?: { finished: number; planned: number }
}

/** How long after cloud-init's final stage the report may take before the cell stops waiting. */
export const REPORT_GRACE_SECONDS = 180

/**
 * True when waiting longer cannot bring the report: cloud-init finished and listed no
 * interface with an address, or finished long enough ago (the first-boot script
 * reports a few seconds after the final stage, and retries for minutes).
 */
export function reportOverdue(c: ConsoleWatcher, bootStartedAt: number, now = Date.now()): boolean {
  const final = c.get('cloud-init-final')
  if (!final) return false
  if (c.facts.netInfoSeen && c.facts.interfaces.length === 0) return true
  return (now - bootStartedAt) / 1000 - final.at > REPORT_GRACE_SECONDS
}

/**
 * A failure TCG causes, not the image: on an overloaded host the emulated timer can
 * miss the kernel's early IO-APIC timer check ("IO-APIC + timer doesn't work!"), a
 * panic at second 0 that the next boot of the same machine does not repeat.
 */
export function isTcgHiccup(d: Diagnosis | undefined): boolean {
  return d?.code === 'kernel-panic' && /IO-APIC \+ timer doesn't work/.test(d.evidence ?? '')
}

/** The cells to run (applicable) and to list as not applicable, for the chosen mode. */
export function planCells(
  axes: { firmwares: readonly Firmware[]; storages: readonly StorageDevice[]; nics: readonly string[] },
  mode: 'covering' | 'all',
  opts: { runGaps?: boolean } = {},
): { run: Cell<Firmware>[]; notApplicable: (Cell<Firmware> & { reason: string })[] } {
  const byName = new Map(axes.storages.map((s) => [s.name, s]))
  const support = (f: Firmware, s: string): FirmwareSupport => {
    const gap = opts.runGaps ? undefined : storageEmulationGap(byName.get(s)!)
    return gap ? { applicable: false, reason: gap } : firmwareSupport(f, byName.get(s)!)
  }
  const m = {
    firmwares: axes.firmwares,
    storages: axes.storages.map((s) => s.name),
    nics: axes.nics,
    applicable: (f: Firmware, s: string) => support(f, s).applicable,
  }
  const na = (c: Cell<Firmware>) => ({ ...c, reason: (support(c.firmware, c.storage) as { reason: string }).reason })
  if (mode === 'all') {
    const cells = allCells(m)
    return {
      run: cells.filter((c) => m.applicable(c.firmware, c.storage)),
      notApplicable: cells.filter((c) => !m.applicable(c.firmware, c.storage)).map(na),
    }
  }
  const run = coveringCells(m)
  // A controller (or firmware) no cell can cover is shown once, as not applicable.
  const notApplicable: (Cell<Firmware> & { reason: string })[] = []
  for (const s of m.storages) {
    if (run.some((c) => c.storage === s)) continue
    for (const f of m.firmwares) notApplicable.push(na({ firmware: f, storage: s, nic: axes.nics[0]! }))
  }
  return { run, notApplicable }
}

/** Runs the lab: boots every planned cell, `jobs` at a time, and returns the results. */
export async function runMatrix(opts: MatrixOptions): Promise<MatrixResult> {
  const catalog = await loadDeviceCatalog()
  const storages = opts.storages.map((s) => classifyStorage(catalog, s))
  for (const n of opts.nics) classifyNic(catalog, n)
  const image = await resolveLabImage(opts.image)
  const reportDir = resolve(opts.reportDir)
  const plan = planCells({ firmwares: opts.firmwares, storages, nics: opts.nics }, opts.cells, {
    runGaps: opts.runGaps ?? false,
  })
  const stamp = await imageStamp(image.path)
  const kept = opts.resume ? await finishedCells(reportDir, plan.run, stamp) : new Map<string, CellResult>()
  const toBoot = plan.run.filter((c) => !kept.has(cellId(c)))
  const started = new Date()
  const t0 = Date.now()

  const listener = await listenForReports({ port: 0, host: '127.0.0.1' })
  const reports = new Map<string, ReceivedReport>()
  const pump = (async () => {
    for await (const r of listener.reports) {
      const id = /^\/report\/([^/?]+)/.exec(r.path)?.[1]
      if (id && !reports.has(id)) reports.set(id, r)
    }
  })()

  const results: CellResult[] = [
    ...plan.notApplicable.map((c) => ({ ...c, id: cellId(c), status: 'n/a' as const })),
    ...kept.values(),
  ]
  opts.onEvent?.({
    type: 'start',
    cells: plan.run.length + plan.notApplicable.length,
    boots: toBoot.length,
    resumed: kept.size,
    jobs: opts.jobs,
    listen: `127.0.0.1:${listener.port}`,
  })
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < toBoot.length && !opts.signal?.aborted) {
      const cell = toBoot[next++]!
      // The cell's number in the whole plan names its machine (MAC, hostname) the same in every run.
      const index = plan.run.indexOf(cell)
      opts.onEvent?.({ type: 'cell-start', id: cellId(cell), index: next - 1, boots: toBoot.length })
      const ctx: CellContext = {
        image,
        reportDir,
        port: listener.port,
        reports,
        storages,
        timeoutMs: opts.timeoutMs,
        memoryMiB: opts.memoryMiB,
        diskSizeBytes: opts.diskSizeBytes ?? 8n << 30n,
        prepare: opts.prepare ?? installPreparer,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
        ...(opts.qemu ? { qemu: opts.qemu } : {}),
      }
      let result = await runCell(cell, index, ctx)
      if (isTcgHiccup(result.diagnosis)) {
        // Boot the cell once more on a fresh disk; keep the first console log beside it.
        const id = cellId(cell)
        const first = join(reportDir, 'cells', `${id}.attempt1`)
        await rm(first, { recursive: true, force: true })
        await rename(join(reportDir, 'cells', id), first)
        const firstDiagnosis = result.diagnosis!
        result = await runCell(cell, index, ctx)
        result.retried = { diagnosis: firstDiagnosis, serialLog: relative(reportDir, join(first, 'serial.log')) }
      }
      results.push(result)
      await saveCell(reportDir, stamp, result)
      opts.onEvent?.({ type: 'cell-done', result, done: ++done, boots: toBoot.length })
    }
  }
  try {
    // allSettled: on a failure or an abort every worker's QEMU is stopped before this returns.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.max(1, Math.min(opts.jobs, toBoot.length)) }, worker),
    )
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    // Interrupted: the cells that finished make a (partial) result; the ones cut off are not in it.
    if (failed && !opts.signal?.aborted) throw failed.reason
  } finally {
    await listener.close()
    await pump
  }
  const order = (c: CellResult) => [
    opts.storages.indexOf(c.storage),
    opts.nics.indexOf(c.nic),
    opts.firmwares.indexOf(c.firmware),
  ]
  results.sort((a, b) => {
    const [x, y] = [order(a), order(b)]
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!
  })
  return {
    image: {
      path: image.path,
      ...(image.name ? { name: image.name } : {}),
      ...(image.kernelFlavor ? { kernelFlavor: image.kernelFlavor } : {}),
      ...(image.kernelVersion ? { kernelVersion: image.kernelVersion } : {}),
    },
    mode: opts.cells,
    firmwares: [...opts.firmwares],
    storages: [...opts.storages],
    nics: [...opts.nics],
    jobs: opts.jobs,
    memoryMiB: opts.memoryMiB,
    timeoutSeconds: opts.timeoutMs / 1000,
    started: started.toISOString(),
    seconds: tenths((Date.now() - t0) / 1000),
    summary: {
      pass: results.filter((r) => r.status === 'pass').length,
      fail: results.filter((r) => r.status === 'fail').length,
      notApplicable: results.filter((r) => r.status === 'n/a').length,
    },
    cells: results,
    ...(opts.signal?.aborted ? { interrupted: { finished: kept.size + done, planned: plan.run.length } } : {}),
  }
}

interface CellContext {
  image: LabImage
  reportDir: string
  /** The report listener's port on the host's loopback. */
  port: number
  reports: Map<string, ReceivedReport>
  storages: StorageDevice[]
  timeoutMs: number
  memoryMiB: number
  diskSizeBytes: bigint
  prepare: DiskPreparer
  qemu?: string
  signal?: AbortSignal
  onEvent?: (e: MatrixEvent) => void
}

async function runCell(cell: Cell<Firmware>, index: number, ctx: CellContext): Promise<CellResult> {
  const id = cellId(cell)
  const workDir = join(ctx.reportDir, 'cells', id)
  await rm(workDir, { recursive: true, force: true })
  await mkdir(workDir, { recursive: true })
  // The guest reaches the host's loopback as 10.0.2.2 in QEMU user networking.
  const seed = labSeed({ hostname: `lab-${index + 1}`, reportUrl: `http://10.0.2.2:${ctx.port}/report/${id}` })
  const catalog = await loadDeviceCatalog()
  // bootCell keeps the console log and removes the disks: they are large and rebuilt for every run.
  const { boot, verdict, report } = await bootCell({
    machine: {
      firmware: cell.firmware,
      storage: ctx.storages.find((s) => s.name === cell.storage)!,
      nic: classifyNic(catalog, cell.nic),
      memoryMiB: ctx.memoryMiB,
      cpus: 1,
      macAddress: macAddressFor(index + 1),
      name: `hwimage-${id}`,
    },
    prepare: () =>
      ctx.prepare({
        image: ctx.image,
        cell,
        workDir,
        seed,
        sizeBytes: ctx.diskSizeBytes,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      }),
    workDir,
    timeoutMs: ctx.timeoutMs,
    until: (c, startedAt) => ctx.reports.has(id) || reportOverdue(c, startedAt),
    report: () => ctx.reports.get(id),
    ...(ctx.qemu ? { qemu: ctx.qemu } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onMilestone: (m) => ctx.onEvent?.({ type: 'milestone', id, kind: m.kind, at: m.at }),
  })
  const diagnosis = verdict.diagnosis ?? verdict.secureBootOff
  const f = boot.facts
  const result: CellResult = {
    ...cell,
    id,
    status: verdict.pass ? 'pass' : 'fail',
    seconds: tenths(report ? (Date.parse(report.received) - boot.startedAt) / 1000 : boot.seconds),
    milestones: boot.milestones.map((m) => ({ kind: m.kind, at: tenths(m.at) })),
    serialLog: relative(ctx.reportDir, boot.serialLog),
  }
  if (diagnosis) result.diagnosis = diagnosis
  const reached = boot.console.last()?.kind
  if (reached) result.reached = reached
  if (f.secureBoot) result.secureBoot = f.secureBoot
  if (f.kernelVersion) result.kernelVersion = f.kernelVersion
  if (f.rootBytes !== undefined) result.rootBytes = f.rootBytes
  if (report) result.report = report.report
  result.qemu = quoteArgv(boot.argv)
  return result
}
