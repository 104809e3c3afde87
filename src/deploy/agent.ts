// The deploy agent: what the network-booted deploy environment runs (`hwimage
// deploy-agent`, started by its /init). It reports the machine's inventory to serve, asks
// what to do, and when told to install runs the same install() as `hwimage install`:
// the image from serve's URL (its .bmap and SHA256SUMS beside it, resumed with Range),
// the machine's seed as the seed step, onto the disk its hints choose in the inventory
// (choose-disk.ts — the disk serve's pre-flight check looked at). Progress goes to serve
// at most twice a second, the install report at the end; on UEFI the installed shim is
// made the next boot (efibootmgr); then the machine reboots.
//
// Any failure is reported as a "failed" event with its error code, message and the tail
// of this agent's log, and the agent stays (it never reboots after a failure: the disk
// holds no table, an operator can redeploy). The token is sent in a header only; it is
// never logged and never part of an error.

import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { GUID_ESP } from '../disk/guid.js'
import { HwimageError } from '../errors.js'
import { install } from '../install/install.js'
import type { InstallReport } from '../install/install-report.js'
import type { DeployTask } from '../serve/deploy-task.js'
import { type BootEntrySpec, setBootNextEntry } from '../tools/efibootmgr.js'
import type { AgentIdentity } from './agent-cmdline.js'
import { chooseDisk } from './choose-disk.js'
import { collectInventory, type InventoryRoots } from './inventory.js'
import { ProgressPoster } from './progress-poster.js'
import { rebootNow } from './reboot.js'
import { enlistMachine, ServeClient, ServeRefusedError } from './serve-client.js'

/** The shim the image installs on its ESP (src/build/disk-image.ts), which the boot entry loads. */
export const INSTALLED_LOADER = '\\EFI\\debian\\shimx64.efi'
/** The boot entry's label (an older entry with it is replaced). */
export const BOOT_ENTRY_LABEL = 'hwimage'
/** Lines of the agent's log sent with a failure. */
const LOG_TAIL_LINES = 60

/** Options of runAgent(). */
export interface AgentOptions {
  identity: AgentIdentity
  /** Where the inventory is read (tests: a synthetic tree); /sys/firmware/efi is looked for under `sysfs`. */
  roots?: InventoryRoots
  /** Install onto this path instead of the disk the hints choose (tests: a file). */
  disk?: string
  /** Reboot after the install (default true). */
  reboot?: boolean
  /** How often to ask again while serve says "wait" (default 15 s). */
  pollMs?: number
  /** Progress reports at most this often (default 500 ms). */
  progressIntervalMs?: number
  /** One human line per step (stderr in the CLI). */
  log?: (line: string) => void
  signal?: AbortSignal
  /** Retries of serve's API (defaults of ServeClient). */
  retry?: { attempts?: number; retryDelayMs?: number; maxDelayMs?: number; timeoutMs?: number }
  /** Replace the side effects that end the deploy (tests). */
  effects?: { setBootNext?: (spec: BootEntrySpec) => Promise<string>; reboot?: () => Promise<void> }
}

/** How the agent ended (a failure throws, after reporting it). */
export interface AgentResult {
  /** installed: the disk holds the image (and rebooting unless reboot: false); stopped: serve said stay; rebooting: serve said the machine is installed already. */
  outcome: 'installed' | 'stopped' | 'rebooting'
  task: DeployTask
  disk?: string
  report?: InstallReport
  /** The UEFI boot entry made BootNext, if any. */
  bootEntry?: string
}

/** Runs one deploy: inventory → task → install → report → boot entry → reboot. */
export async function runAgent(opts: AgentOptions): Promise<AgentResult> {
  const tail: string[] = []
  const log = (line: string) => {
    const l = line.length > 1000 ? `${line.slice(0, 1000)}…` : line
    tail.push(`${new Date().toISOString()} ${l}`)
    if (tail.length > LOG_TAIL_LINES) tail.shift()
    opts.log?.(l)
  }
  const { identity } = opts
  let token = identity.token
  if (!token) {
    log(`enlisting ${identity.mac} at ${identity.url}`)
    token = await enlistMachine(identity.url, identity.mac, opts.signal)
  }
  const client = new ServeClient({
    url: identity.url,
    mac: identity.mac,
    token,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...opts.retry,
  })
  try {
    return await deploy(opts, client, log)
  } catch (e) {
    await reportFailure(client, e, tail, log)
    throw e
  }
}

/**
 * runAgent() until the machine is installed, for the deploy environment's /init: after a
 * failure or a "stay" it asks serve again every `retryMs`, so that an operator's assign
 * (a failed machine goes back to deploying, same token) starts the next install in place.
 * A refused token means an operator redeployed (which revokes the deploy's tokens): the
 * machine reboots, and its next network boot brings a new one.
 */
export async function runAgentRetrying(opts: AgentOptions & { retryMs: number }): Promise<AgentResult> {
  const log = (line: string) => opts.log?.(line)
  let identity = opts.identity
  for (;;) {
    try {
      if (!identity.token) {
        log(`enlisting ${identity.mac} at ${identity.url}`)
        identity = { ...identity, token: await enlistMachine(identity.url, identity.mac, opts.signal), enlist: false }
      }
      const r = await runAgent({ ...opts, identity })
      if (r.outcome !== 'stopped') return r
    } catch (e) {
      if (opts.signal?.aborted) throw e
      if (e instanceof ServeRefusedError && (e.status === 401 || e.status === 403) && identity.token) {
        log("serve refused this deploy's token (an operator redeployed it): rebooting for a new network boot")
        if (opts.reboot === false) throw e
        await (opts.effects?.reboot ?? rebootNow)()
        return { outcome: 'rebooting', task: { action: 'reboot', state: 'deploying', reason: 'token revoked' } }
      }
      // Reported to serve by runAgent() (or serve cannot be reached): wait for an operator.
    }
    log(`asking serve again in ${Math.round(opts.retryMs / 1000)} s (an operator can assign or redeploy)`)
    await sleep(opts.retryMs, opts.signal)
  }
}

async function deploy(opts: AgentOptions, client: ServeClient, log: (line: string) => void): Promise<AgentResult> {
  const inventory = await collectInventory(opts.roots ?? {})
  log(
    `inventory: ${inventory.firmware}, ${inventory.cpus} CPUs, ${inventory.disks.length} disks (${inventory.disks.map((d) => d.path).join(', ') || 'none'}), ${inventory.nics.length} NICs, ${inventory.pci.length} PCI functions`,
  )
  let task = await client.inventory(inventory)
  while (task.action === 'wait') {
    log(`serve: wait (${task.reason})`)
    await sleep(opts.pollMs ?? 15_000, opts.signal)
    task = await client.task()
  }
  if (task.action === 'stop') {
    log(`serve: stay (${task.reason})`)
    return { outcome: 'stopped', task }
  }
  if (task.action === 'reboot') {
    log(`serve: reboot (${task.reason})`)
    if (opts.reboot !== false) await (opts.effects?.reboot ?? rebootNow)()
    return { outcome: 'rebooting', task }
  }

  if (task.action !== 'install')
    throw new HwimageError(
      'NETWORK',
      `Cannot deploy: serve answered an unknown action "${(task as { action: string }).action}"`,
      {
        hint: 'use the deploy environment built with the same hwimage as serve',
      },
    )
  const disk = opts.disk ?? chooseDisk(inventory, task.diskHints).path
  log(
    `installing ${task.image.url} onto ${disk}${task.diskHints.length ? ` (hints ${task.diskHints.join(', ')})` : ''}`,
  )
  const poster = new ProgressPoster((p) => client.progress(p), {
    ...(opts.progressIntervalMs !== undefined ? { intervalMs: opts.progressIntervalMs } : {}),
    onError: (e) => log(`progress not reported: ${(e as Error).message}`),
  })
  const seedDir = task.seedUrl ? await mkdtemp(path.join(os.tmpdir(), 'hwimage-seed-')) : undefined
  let report: InstallReport
  try {
    const seed = task.seedUrl && seedDir ? await seedOf(client, task.seedUrl, seedDir, log) : undefined
    report = await install({
      source: task.image.url,
      disk,
      bmap: task.image.bmapUrl,
      sha256Url: task.image.sha256Url,
      // Unattended: serve's assignment and the disk hints are the operator's decision.
      yes: true,
      ...(seed ? { seed } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      onEvent: (name, fields) => log(`install: ${name} ${JSON.stringify(fields)}`),
      onProgress: (p) => poster.update(p),
    })
    poster.update({ stage: 'done', done: report.bytes.written, total: report.bytes.written })
    await poster.flush()
  } catch (e) {
    poster.stop()
    throw e
  } finally {
    if (seedDir) await rm(seedDir, { recursive: true, force: true })
  }
  log(`installed: ${report.bytes.written} bytes written in ${report.seconds.total} s`)
  await client.event('installed', { report })

  const result: AgentResult = { outcome: 'installed', task, disk, report }
  const efi = path.join(opts.roots?.sysfs ?? '/sys', 'firmware/efi')
  if (existsSync(efi)) {
    const esp = report.image.partitions?.find((p) => p.type.toUpperCase() === GUID_ESP)
    try {
      if (!esp) throw new Error('the image has no EFI system partition')
      const spec = { disk, part: esp.number, label: BOOT_ENTRY_LABEL, loader: INSTALLED_LOADER }
      result.bootEntry = await (opts.effects?.setBootNext ?? setBootNextEntry)(spec)
      log(`UEFI: Boot${result.bootEntry} (${INSTALLED_LOADER} on ${disk} partition ${esp.number}) is BootNext`)
      await client.event('boot-entry', { bootnum: result.bootEntry, ...spec })
    } catch (e) {
      // Not a failed deploy: the disk boots by its removable path, and serve answers "boot
      // the disk" to the network boot once the machine is installed.
      log(`UEFI: no boot entry made: ${(e as Error).message}`)
      await client.event('boot-entry', { error: (e as Error).message }).catch(() => undefined)
    }
  }
  if (opts.reboot !== false) {
    log('rebooting')
    await client.event('rebooting', {}).catch(() => undefined)
    await (opts.effects?.reboot ?? rebootNow)()
  }
  return result
}

/** Downloads the seed into a 0600 file in the private directory and makes the install's seed step of it. */
async function seedOf(client: ServeClient, url: string, dir: string, log: (line: string) => void) {
  const { readSeedFile, seedStep } = await import('../install/seed-partition.js')
  const file = path.join(dir, 'seed.yaml')
  await writeFile(file, await client.seed(url), { mode: 0o600, flag: 'wx' })
  const seed = await readSeedFile(file)
  return seedStep(seed, {
    onWarning: (w) => log(`warning: ${w}`),
    onWritten: (s) => log(`seed partition ${s.partition}: ${s.label}, instance-id ${s.instanceId}`),
  })
}

async function reportFailure(client: ServeClient, e: unknown, tail: string[], log: (line: string) => void) {
  // serve refused this machine's token: a report would be refused the same way.
  if (e instanceof ServeRefusedError && (e.status === 401 || e.status === 403)) return
  const code = e instanceof HwimageError ? e.code : 'INTERNAL'
  const hint = e instanceof HwimageError && e.hint ? ` (${e.hint})` : ''
  const message = `${(e as Error)?.message ?? String(e)}${hint}`
  log(`failed: ${code}: ${message}`)
  await client.event('failed', { code, message, logTail: tail.join('\n') }).catch((e2: unknown) => {
    log(`the failure was not reported: ${(e2 as Error).message}`)
  })
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t)
        reject(signal.reason)
      },
      { once: true },
    )
  })
}
