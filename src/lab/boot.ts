// Boots one lab machine: QEMU (TCG) with its serial console in a file, followed as it
// grows; milestones are recorded with the time they appeared; the boot stops when
// the caller's predicate says it is done, on timeout, or on abort — and QEMU is
// always killed before this returns.

import type { spawn } from 'node:child_process'
import { copyFile, open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { InterruptedError } from '../errors.js'
import { buildQemuArgs, OVMF_FILES, type QemuMachine } from '../tools/qemu.js'
import { spawnError, spawnTool } from '../tools/run.js'
import { ConsoleWatcher, type ConsoleFacts, type Milestone } from './console-watch.js'

/** What to boot and when to stop. */
export interface BootOptions {
  /** The machine; its serial log and OVMF variable store go in workDir. */
  machine: Omit<QemuMachine, 'serialLog' | 'varsPath'>
  /** A directory for this boot's files (serial.log, ovmf-vars.fd); it must exist. */
  workDir: string
  timeoutMs: number
  /** Checked whenever console output arrives and every poll: true ends the boot as done. */
  done?: (console: ConsoleWatcher) => boolean
  signal?: AbortSignal
  /** Called once per milestone, as it is first seen. */
  onMilestone?: (m: Milestone) => void
  /** How often the serial log is read (default 250 ms). */
  pollMs?: number
  qemu?: string
  /** A command QEMU runs under, e.g. `['ip', 'netns', 'exec', 'NS']` for a tap device in a network namespace. */
  wrap?: readonly string[]
}

/** How a boot ended and what its console showed. */
export interface BootResult {
  /** done: the predicate held; timeout: time ran out; exited: QEMU stopped by itself. */
  outcome: 'done' | 'timeout' | 'exited'
  /** When QEMU was started (ms since the epoch). */
  startedAt: number
  /** Seconds from QEMU's start to the end of the boot. */
  seconds: number
  milestones: Milestone[]
  facts: ConsoleFacts
  serialLog: string
  /** The full QEMU command line. */
  argv: string[]
  /** Set when QEMU exited by itself. */
  qemuExit?: { status: number | null; signal: string | null; stderr: string }
  /** The console watcher, for diagnoseBoot(). */
  console: ConsoleWatcher
}

const KILL_GRACE_MS = 5000

/** Boots a machine under QEMU and follows its serial console until done, timeout or abort. */
export async function bootMachine(opts: BootOptions): Promise<BootResult> {
  if (opts.signal?.aborted) throw new InterruptedError('Interrupted before the boot started')
  const serialLog = join(opts.workDir, 'serial.log')
  await rm(serialLog, { force: true })
  let varsPath: string | undefined
  const fw = opts.machine.firmware
  if (fw !== 'bios') {
    // A fresh copy per boot: OVMF writes boot entries into it (shim's fallback does).
    varsPath = join(opts.workDir, 'ovmf-vars.fd')
    await copyFile(OVMF_FILES[fw].varsTemplate, varsPath)
  }
  const args = buildQemuArgs({ ...opts.machine, serialLog, ...(varsPath ? { varsPath } : {}) })
  const program = opts.qemu ?? 'qemu-system-x86_64'
  const argv = [...(opts.wrap ?? []), program, ...args]
  const watcher = new ConsoleWatcher()
  const started = Date.now()
  const elapsed = () => (Date.now() - started) / 1000

  // Through setpriv --pdeathsig (spawnTool): QEMU dies with hwimage, even on SIGKILL.
  const child = spawnTool(argv, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString('utf8')).slice(-16000)
  })
  let exit: { status: number | null; signal: string | null } | undefined
  let spawnFailure: Error | undefined
  const exited = new Promise<void>((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnFailure = spawnError(argv, e)
      resolve()
    })
    child.on('exit', (status, signal) => {
      exit = { status, signal }
      resolve()
    })
  })

  let log: FileHandle | undefined
  let offset = 0
  const decoder = new TextDecoder('utf-8')
  const buf = new Uint8Array(64 * 1024)
  const seen = new Set<string>()
  const readLog = async (): Promise<void> => {
    if (!log) {
      try {
        log = await open(serialLog, 'r')
      } catch {
        return // QEMU has not created it yet
      }
    }
    for (;;) {
      const { bytesRead } = await log.read(buf, 0, buf.length, offset)
      if (bytesRead === 0) break
      offset += bytesRead
      watcher.feed(decoder.decode(buf.subarray(0, bytesRead), { stream: true }), elapsed())
    }
    for (const m of watcher.milestones) {
      if (seen.has(m.kind)) continue
      seen.add(m.kind)
      opts.onMilestone?.(m)
    }
  }

  let outcome: BootResult['outcome'] = 'timeout'
  let aborted = false
  const onAbort = () => {
    aborted = true
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const deadline = started + opts.timeoutMs
    const pollMs = opts.pollMs ?? 250
    for (;;) {
      await Promise.race([exited, sleep(pollMs)])
      await readLog()
      if (spawnFailure) throw spawnFailure
      if (opts.done?.(watcher)) {
        outcome = 'done'
        break
      }
      if (exit) {
        outcome = 'exited'
        break
      }
      if (aborted) break
      if (Date.now() >= deadline) break
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    await stop(child, exited, () => exit !== undefined || spawnFailure !== undefined)
    await readLog().catch(() => {})
    watcher.feed(decoder.decode(), elapsed())
    watcher.end(elapsed())
    await log?.close()
  }
  if (aborted && outcome !== 'done') throw new InterruptedError('Interrupted while booting the machine')
  const result: BootResult = {
    outcome,
    startedAt: started,
    seconds: elapsed(),
    milestones: watcher.milestones,
    facts: watcher.facts,
    serialLog,
    argv,
    console: watcher,
  }
  if (outcome === 'exited' && exit) result.qemuExit = { ...exit, stderr }
  return result
}

/** SIGTERM, then SIGKILL if QEMU is still there after a grace period. */
async function stop(child: ReturnType<typeof spawn>, exited: Promise<void>, gone: () => boolean): Promise<void> {
  if (gone()) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
  await exited
  clearTimeout(timer)
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
