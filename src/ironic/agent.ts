// Agent mode of the deploy environment (kernel command line with ipa-api-url=, as Ironic's
// PXE boot writes it): the deploy environment acts as ironic-python-agent for Ironic's
// `direct` deploy interface. It looks its node up by the machine's MACs, serves the agent
// API (src/ironic/agent-server.ts) on ipa-listen-port (9999), heartbeats every few seconds
// (and at once when a command finishes) with the agent token lookup gave, and runs what
// Ironic sends (src/ironic/deploy-steps.ts): write_image with hwimage's installer (SHA-256
// verified before the first MiB, so a mismatch leaves no valid table), the config drive as
// IPA writes it, power_off. Failures become FAILED commands: Ironic puts their details in
// the node's last_error.

import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { chooseDisk } from '../deploy/choose-disk.js'
import { collectInventory, type InventoryRoots } from '../deploy/inventory.js'
import { DeviceError } from '../errors.js'
import { install } from '../install/install.js'
import type { IronicAgentConfig } from './agent-cmdline.js'
import { agentServer } from './agent-server.js'
import { CommandFailure, CommandStore } from './commands.js'
import { type DeployEffects, deployHandlers } from './deploy-steps.js'
import { IronicApiError, IronicClient } from './ironic-api.js'

const pexec = promisify(execFile)

/** Ironic's root_device hints (node properties) as the installer's disk hints. */
export function rootDeviceHints(root: Record<string, unknown> | undefined): string[] {
  if (!root || Object.keys(root).length === 0) return []
  const out: string[] = []
  for (const [key, value] of Object.entries(root)) {
    const text = String(value)
    if (/^\s*(<in>|<or>|s==|s!=|s>=|s<=|<=|>=|==|!=)/.test(text) && key !== 'size')
      throw new CommandFailure(
        'InvalidCommandParamsError',
        `root_device ${key}="${text}": operators are not supported by the hwimage agent (give the plain value)`,
      )
    if (key === 'size') {
      const m = /^\s*(>=|<=|==)?\s*(\d+)\s*$/.exec(text)
      if (!m) throw new CommandFailure('InvalidCommandParamsError', `root_device size="${text}" is not a number of GiB`)
      out.push(`size=${m[1] && m[1] !== '==' ? m[1] : ''}${m[2]}G`)
    } else if (['name', 'serial', 'wwn', 'model', 'vendor', 'hctl', 'rotational'].includes(key))
      out.push(`${key}=${text}`)
    else
      throw new CommandFailure(
        'InvalidCommandParamsError',
        `root_device hint "${key}" is not supported by the hwimage agent (name, serial, wwn, model, vendor, hctl, rotational, size)`,
      )
  }
  return out
}

/** The deploy environment's effects: the real inventory, installer, power off. */
export function realEffects(log: (l: string) => void, roots: InventoryRoots = {}): DeployEffects {
  return {
    async chooseDisk(root) {
      const inventory = await collectInventory(roots)
      return chooseDisk(inventory, rootDeviceHints(root)).path
    },
    // Ironic boots the agent in the node's boot mode, the one the instance boots in, and passes
    // none to write_image for a whole-disk image (agent.py): booted by UEFI, a 4Kn disk gets
    // the image converted for UEFI only (BIOS boot code cannot work on 4096-byte sectors).
    install: (o) =>
      install({ ...o, yes: true, uefiOnly: existsSync(path.join(roots.sysfs ?? '/sys', 'firmware/efi')) }),
    async fetchText(url) {
      const res = await fetch(url)
      if (!res.ok) throw new CommandFailure('InstanceDeployFailure', `config drive ${url}: HTTP ${res.status}`)
      return res.text()
    },
    async powerOff() {
      try {
        await pexec('poweroff', ['-f'])
      } catch {
        await writeFile('/proc/sysrq-trigger', 'o')
      }
    },
    async sync() {
      await pexec('sync', [])
    },
    log,
  }
}

export interface IronicAgentOptions {
  config: IronicAgentConfig
  log: (line: string) => void
  effects?: DeployEffects
  /** MACs to look up with (default: the inventory's NICs, the booted one first). */
  macs?: string[]
  heartbeatMs?: number
  lookupRetryMs?: number
  fetchFn?: typeof fetch
  signal?: AbortSignal
}

/** The first IPv4 address of a non-loopback interface (the advertised host when none is given). */
export function localIpv4(): string | undefined {
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  return undefined
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(t)
      resolve()
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** Runs the agent until `signal` aborts (the deploy environment: until Ironic powers it off). */
export async function runIronicAgent(opts: IronicAgentOptions): Promise<void> {
  const { config, log } = opts
  const client = new IronicClient(config.apiUrl, opts.fetchFn)
  let macs = opts.macs
  if (!macs) {
    const inv = await collectInventory()
    macs = inv.nics.map((n) => n.mac.toLowerCase())
    if (config.bootMac) macs = [config.bootMac, ...macs.filter((m) => m !== config.bootMac)]
  }
  if (macs.length === 0)
    throw new CommandFailure('NoNics', 'Ironic agent: this machine has no NIC to look its node up by')
  const host = config.advertiseHost ?? localIpv4()
  if (!host)
    throw new CommandFailure('NoAddress', 'Ironic agent: no IPv4 address to advertise (set ipa-advertise-host=)')
  const callbackUrl = `http://${host.includes(':') ? `[${host}]` : host}:${config.advertisePort}`

  let token: string | undefined
  let beat: (() => void) | undefined
  const store = new CommandStore(deployHandlers(opts.effects ?? realEffects(log)), (rec) => {
    log(
      `command ${rec.command_name}: ${rec.command_status}${rec.command_error ? ` — ${rec.command_error.details}` : ''}`,
    )
    beat?.()
  })
  const server = agentServer(store, () => token, log)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new DeviceError('DEVICE_BUSY', `Cannot start the Ironic agent: port ${config.listenPort} is in use`, {
              hint: 'another agent runs here: stop it, or choose another port with ipa-listen-port=',
            })
          : e,
      ),
    )
    server.listen(config.listenPort, '0.0.0.0', () => resolve())
  })
  log(`agent API on :${config.listenPort}, advertised as ${callbackUrl}`)
  try {
    let node: string | undefined
    while (!opts.signal?.aborted) {
      try {
        const found = await client.lookup(macs)
        node = found.node.uuid
        token = found.config.agent_token
        log(`lookup: node ${node}${token ? ', agent token received' : ', no agent token'}`)
        break
      } catch (e) {
        log(`lookup ${macs.join(',')}: ${(e as Error).message}; again in ${(opts.lookupRetryMs ?? 5000) / 1000} s`)
        await sleep(opts.lookupRetryMs ?? 5000, opts.signal)
      }
    }
    if (!node || !token) return
    const nodeUuid = node
    const agentToken = token
    let wake: (() => void) | undefined
    beat = () => wake?.()
    // One abort listener for the whole loop (one per heartbeat piled up: MaxListenersExceeded).
    opts.signal?.addEventListener('abort', () => wake?.(), { once: true })
    while (!opts.signal?.aborted) {
      try {
        await client.heartbeat(nodeUuid, callbackUrl, agentToken)
      } catch (e) {
        log(`heartbeat: ${(e as Error).message}${e instanceof IronicApiError ? '' : ' (Ironic unreachable?)'}`)
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, opts.heartbeatMs ?? 10_000)
        wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      wake = undefined
    }
  } finally {
    await store.idle()
    await new Promise<void>((r) => server.close(() => r()))
  }
}
