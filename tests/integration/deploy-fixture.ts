// The network deploy tests' shared parts: `hwimage serve` as an operator runs it (the CLI,
// its config file), serve's JSON API, blank disks, and one QEMU machine that boots from the
// network and is followed through the API until it is deployed or failed. Used by
// deploy-e2e.test.ts (make test) and tests/deploy/ (make test-deploy).

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { DeployManifest } from '../../src/deploy/build-deploy.js'
import type { DeployPhases } from '../../src/serve/deploy-phases.js'
import type { MachineEvent, MachineRecord } from '../../src/serve/state/store.js'
import { bootMachine, type BootResult } from '../../src/lab/boot.js'
import { stripControl } from '../../src/lab/console-watch.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import type { Firmware } from '../../src/tools/qemu.js'
import { CLI } from './fixture.js'

export const DEPLOY_DIR = resolve(process.env.HWIMAGE_DEPLOY_ENV_DIR ?? '.cache/deploy-env')
export const DISK_BYTES = 20 * 1024 ** 3
export const KERNEL_ARGS = 'console=tty0 console=ttyS0,115200n8'

export function deployEnvironment(): DeployManifest {
  const file = join(DEPLOY_DIR, 'manifest.json')
  if (!existsSync(file))
    throw new Error(`${DEPLOY_DIR} holds no deploy environment (run the integration tier through \`make test\`)`)
  return JSON.parse(readFileSync(file, 'utf8')) as DeployManifest
}

// serve must keep one port across a restart (the guest has it): tests take a free one first.
export { freePort } from './guest.js'

/** `hwimage serve CONFIG --json`, the CLI as an operator runs it. */
export class Serve {
  child!: ChildProcess
  log = ''
  private constructor(
    readonly config: string,
    readonly wrap: readonly string[],
  ) {}

  /** `wrap`: a command serve runs under, e.g. `['ip', 'netns', 'exec', 'NS']` (it must exec serve). */
  static async start(config: string, wrap: readonly string[] = []): Promise<Serve> {
    const s = new Serve(config, wrap)
    await s.spawn()
    return s
  }

  async spawn(): Promise<void> {
    const argv = [...this.wrap, CLI, 'serve', this.config, '--json']
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    let mine = ''
    await new Promise<void>((resolve, reject) => {
      const onData = (b: Buffer) => {
        mine += b
        this.log += b
        if (/"event":"listening"/.test(mine)) resolve()
      }
      child.stdout!.on('data', (b: Buffer) => (this.log += b))
      child.stderr!.on('data', onData)
      child.once('exit', () => reject(new Error(`serve exited: ${mine.slice(-2000)}`)))
    })
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const gone = new Promise((r) => this.child.once('exit', r))
    this.child.kill(signal)
    await gone
  }
}

export interface MachineDoc {
  machine: MachineRecord
  phases: DeployPhases
  events: MachineEvent[]
}

/** The operator API over loopback (no operator_token: loopback only). */
export async function api(port: number, path: string): Promise<MachineDoc | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  if (res.status === 404) return undefined
  assert.equal(res.status, 200, `GET ${path}: ${res.status}`)
  return (await res.json()) as MachineDoc
}

/**
 * serve's config for a test over slirp: loopback only (the guest reaches it as 10.0.2.2),
 * state and TFTP tree under `dir`, the given images, then `extra` lines (unknown_macs, machines).
 */
export function serveConfig(dir: string, port: number, images: Record<string, string>, extra: string[]): string {
  const list = Object.entries(images)
    .map(([name, path]) => `${name}: ${path}`)
    .join(', ')
  return [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `public_url: http://10.0.2.2:${port}`,
    `state_dir: ${join(dir, 'state')}`,
    `deploy_dir: ${DEPLOY_DIR}`,
    `tftp_root: ${join(dir, 'tftp')}`,
    `images: { ${list} }`,
    `kernel_args: ${KERNEL_ARGS}`,
    ...extra,
    '',
  ].join('\n')
}

/** A blank (all-zero, sparse) disk: nothing on it, as on a new server. */
export async function blankDisk(path: string, bytes = DISK_BYTES): Promise<void> {
  const fh = await open(path, 'w')
  await fh.truncate(bytes)
  await fh.close()
}

/** A NoCloud seed: hostname, instance-id, the NIC by MAC with DHCP, then `extra` lines (users, user_data). */
export function seedYaml(hostname: string, instanceId: string, mac: string, extra: string[] = []): string {
  return [
    `hostname: ${hostname}`,
    `instance_id: ${instanceId}`,
    'network:',
    '  ethernets:',
    `    - mac: "${mac}"`,
    '      dhcp4: true',
    ...extra,
    '',
  ].join('\n')
}

export interface DeployRun {
  boot: BootResult
  doc: MachineDoc
  console: string
  seen: string[]
  /** The disk files, in the order given. */
  disks: string[]
}

/**
 * Boots a machine whose first boot device is the network, and follows serve's API every
 * 2 s until the machine is deployed or failed; `onPoll` sees every answer (assign, faults).
 */
export async function deploy(o: {
  dir: string
  firmware: Firmware
  mac: string
  bootfile: string
  tftpRoot: string
  port: number
  timeoutMs: number
  onPoll?: (doc: MachineDoc | undefined) => Promise<void>
  /** The machine's blank disks, in bytes (default: one of 20 GiB); the first is the boot disk. */
  disks?: number[]
  /** The disks' controller, a QEMU device name (default virtio-blk-pci). */
  storage?: string
  /** When following the machine ends (default: deployed or failed). */
  settled?: (doc: MachineDoc) => boolean
  /** Host loopback ports forwarded into the guest (slirp hostfwd), e.g. SSH to the installed system. */
  hostForwards?: { hostPort: number; guestPort: number }[]
}): Promise<DeployRun> {
  const catalog = await loadDeviceCatalog()
  const disks = (o.disks ?? [DISK_BYTES]).map((bytes, i) => ({ path: join(o.dir, `disk${i}.raw`), bytes }))
  for (const d of disks) await blankDisk(d.path, d.bytes)
  const settled = o.settled ?? ((doc: MachineDoc) => doc.machine.state === 'deployed' || doc.machine.state === 'failed')
  let last: MachineDoc | undefined
  let finished = false
  const seen: string[] = []
  let pollError: unknown
  const started = Date.now()
  const poller = (async () => {
    while (!finished) {
      // A machine serve never heard of within 5 minutes did not network-boot: stop early.
      if (!last && Date.now() - started > 5 * 60_000) break
      await new Promise((r) => setTimeout(r, 2000))
      let doc: MachineDoc | undefined
      try {
        doc = await api(o.port, `/api/v1/machines/${o.mac}`)
      } catch (e) {
        // serve restarting (the fault test): ask again.
        if ((e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') continue
        throw e
      }
      if (doc) {
        last = doc
        if (seen.at(-1) !== doc.machine.state) seen.push(doc.machine.state)
      }
      await o.onPoll?.(doc)
      if (doc && settled(doc)) finished = true
    }
  })().catch((e) => {
    pollError = e
    finished = true
  })
  const boot = await bootMachine({
    machine: {
      firmware: o.firmware,
      storage: classifyStorage(catalog, o.storage ?? 'virtio-blk-pci'),
      nic: classifyNic(catalog, 'virtio-net-pci'),
      disks: disks.map((d, i) => ({
        path: d.path,
        format: 'raw' as const,
        role: i === 0 ? ('boot' as const) : ('extra' as const),
      })),
      memoryMiB: 2048,
      cpus: 2,
      macAddress: o.mac,
      netboot: { tftpRoot: o.tftpRoot, bootfile: o.bootfile },
      hostForwards: o.hostForwards,
      name: `deploy-${o.firmware}`,
    },
    workDir: o.dir,
    timeoutMs: o.timeoutMs,
    done: (c) => finished || c.has('panic'),
  })
  finished = true
  await poller
  if (pollError) throw pollError
  const console = stripControl(await readFile(boot.serialLog, 'utf8').catch(() => ''))
  assert.ok(last, `serve never knew ${o.mac} (${boot.outcome}); console: ${boot.serialLog}\n${console.slice(-3000)}`)
  const doc = (await api(o.port, `/api/v1/machines/${o.mac}`)) ?? last
  return { boot, doc, console, seen, disks: disks.map((d) => d.path) }
}

/** A `hwimage` CLI call against serve's API (HWIMAGE_SERVER), as an operator types it. */
export async function runCli(args: string[], port: number): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(CLI, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HWIMAGE_SERVER: `http://127.0.0.1:${port}` },
  })
  let stderr = ''
  child.stderr!.on('data', (b: Buffer) => (stderr += b))
  const status = await new Promise<number | null>((r) => child.on('close', r))
  return { status, stderr }
}
