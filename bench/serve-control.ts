// The control plane at load: deploy agents for MACHINES machines against one `hwimage serve`,
// on the routes and with the payloads of the real agent (src/deploy/agent.ts through
// src/deploy/serve-client.ts's ServeClient and enlistMachine, one attempt each so that no
// retry hides a failure): enlist, inventory (answered "wait"), the operator's assign (what
// `hwimage machines assign` sends), the task (answered "install"), progress every second
// while installing (write, then verify, then done), the "installed" event with an install
// report, "rebooting", and the installed system's first-boot report. The machines start
// over RAMP_MS, as a rack powering on does.
//
// An SSE client on /api/v1/stream (as the dashboard opens it) counts the events it is sent
// and how long after the request that caused each one it arrived; the events are counted
// again in serve's database afterwards (better-sqlite3, read-only).

import Database from 'better-sqlite3'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pci } from '../src/deploy/inventory.fixture.js'
import type { Inventory } from '../src/deploy/inventory-types.js'
import { enlistMachine, ServeClient } from '../src/deploy/serve-client.js'
import { cpuSeconds, percentile, sampleRss } from './serve-procs.js'

const GiB = 2 ** 30
const VIRTIO_BLK = pci('0000:00:05.0', '1af4', '1001', '010000', ['1af4', '0002'])
const VIRTIO_NET = pci('0000:00:03.0', '1af4', '1000', '020000', ['1af4', '0001'])
/** The stages an install reports, in order (src/install/install-steps.ts), and the seconds spent in each. */
const STAGES: [string, number][] = [
  ['write', 24],
  ['verify', 6],
]

/** What one run found. */
export interface ControlResult {
  machines: number
  seconds: number
  requests: number
  failures: string[]
  /** Latency in ms of the agents' requests, by route, and all of them. */
  latency: Record<string, { n: number; p50: number; p99: number; max: number }>
  /** Events the database holds for the run, those the stream delivered, and what each machine should have. */
  dbEvents: number
  streamEvents: number
  missing: string[]
  /** Seconds from the request that caused an event to its arrival on the stream. */
  lag: { p50: number; p99: number; max: number }
  deployedInDb: number
  deployedOnStream: number
  serveCpu: number
  clientCpu: number
  serveRssMax: number
  serveRssStart: number
}

export function inventoryOf(mac: string): Inventory {
  const disk = (name: string, sizeBytes: number, serial: string) => ({
    path: `/dev/${name}`,
    name,
    sizeBytes,
    logicalSectorSize: 512,
    physicalSectorSize: 512,
    serial,
    rotational: false,
    removable: false,
    controller: VIRTIO_BLK.address,
  })
  return {
    version: 1,
    firmware: 'uefi-secureboot',
    cpus: 2,
    memoryBytes: 8 * GiB,
    pci: [
      { ...VIRTIO_BLK, driver: 'virtio-pci' },
      { ...VIRTIO_NET, driver: 'virtio-pci' },
    ],
    disks: [disk('vda', 200 * GiB, `S-${mac.replaceAll(':', '')}`)],
    nics: [{ name: 'ens3', mac, link: true, driver: 'virtio_net', pci: VIRTIO_NET.address }],
    uptimeSeconds: 11.5,
  }
}

/** An install report of the size and shape install() returns (src/install/install-report.ts). */
function installReport(seconds: number): Record<string, unknown> {
  return {
    source: { name: 'http://127.0.0.1/images/default/debian-12-server-amd64.img.zst', format: 'zstd' },
    digests: { sourceVerified: true, sha256: 'a'.repeat(64) },
    bytes: { read: 192877701, image: 2 * GiB, written: 591364096, skipped: 1556119552, zeroed: 0 },
    image: {
      partitions: [14, 15, 1].map((number) => ({ number, start: 1048576 * number, size: 104857600, type: 'x' })),
    },
    seconds: { total: seconds, download: seconds * 0.9, sync: 0.4 },
    resumes: { count: 0 },
  }
}

interface Sent {
  at: number
}

export async function controlRun(opts: {
  url: string
  pid: number
  stateDb: string
  machines: number
  rampMs: number
}): Promise<ControlResult> {
  const { url } = opts
  const latencies = new Map<string, number[]>()
  const failures: string[] = []
  /** `${mac} ${kind}` → when the request that makes that event was sent. */
  const sentAt = new Map<string, Sent>()
  let requests = 0
  const timed = async <T>(route: string, key: string | undefined, call: () => Promise<T>): Promise<T | undefined> => {
    const t0 = performance.now()
    if (key) sentAt.set(key, { at: t0 })
    requests++
    try {
      const r = await call()
      const list = latencies.get(route) ?? []
      list.push(performance.now() - t0)
      latencies.set(route, list)
      return r
    } catch (e) {
      failures.push(`${route}: ${(e as Error).message}`)
      return undefined
    }
  }

  const before = new Database(opts.stateDb, { readonly: true, fileMustExist: true })
  const firstId = (before.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM events').get() as { id: number }).id
  before.close()

  const stream = await openStream(`${url}/api/v1/stream`, firstId, sentAt)
  const cpu0 = cpuSeconds(opts.pid) ?? 0
  const client0 = process.cpuUsage()
  const rss = sampleRss(opts.pid, 250)
  const t0 = performance.now()

  const agent = async (i: number) => {
    await sleep((opts.rampMs * i) / opts.machines)
    const mac = `02:00:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`
    const token = await timed('enlist', `${mac} enlisting`, () => enlistMachine(url, mac))
    if (!token) return
    const c = new ServeClient({ url, mac, token, attempts: 1 })
    const waiting = await timed('inventory', `${mac} inventory`, () => c.inventory(inventoryOf(mac)))
    if (waiting && waiting.action !== 'wait') failures.push(`${mac}: inventory answered ${waiting.action}`)
    await timed('assign (operator)', `${mac} assigned`, async () => {
      const res = await fetch(`${url}/api/v1/machines/${mac}/assign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: 'default' }),
      })
      if (!res.ok) throw new Error(`assign: ${res.status} ${await res.text()}`)
      return await res.json()
    })
    await sleep(1000)
    const task = await timed('task', undefined, () => c.task())
    if (task && task.action !== 'install') failures.push(`${mac}: task answered ${task.action}`)
    const total = 2 * GiB
    const seconds = STAGES.reduce((a, [, s]) => a + s, 0)
    let second = 0
    for (const [stage, length] of STAGES) {
      for (let s = 0; s < length; s++, second++) {
        const next = t0 + (opts.rampMs * i) / opts.machines + 1000 * (second + 2)
        await timed('progress', s === 0 ? `${mac} stage ${stage}` : undefined, () =>
          c.progress({ stage, done: Math.round((total * s) / length), total, rate: total / seconds }),
        )
        await sleep(Math.max(0, next - performance.now()))
      }
    }
    await timed('progress', `${mac} stage done`, () => c.progress({ stage: 'done', done: total, total }))
    await timed('events', `${mac} installed`, () => c.event('installed', { report: installReport(seconds) }))
    await timed('events', `${mac} rebooting`, () => c.event('rebooting', {}))
    await sleep(2000)
    await timed('report', `${mac} first-boot`, () =>
      firstBoot(url, mac, token, {
        event: 'first-boot',
        hostname: `node-${i}`,
        instance_id: `i-${mac.replaceAll(':', '')}`,
        addresses: ['10.0.2.15'],
        cloud_init: { status: 'done', errors: [] },
        uptime_seconds: 9.2,
        time: new Date().toISOString(),
      }),
    )
  }
  await Promise.all(Array.from({ length: opts.machines }, (_, i) => agent(i)))
  const seconds = (performance.now() - t0) / 1000
  const clientUsage = process.cpuUsage(client0)
  const serveCpu = (cpuSeconds(opts.pid) ?? cpu0) - cpu0
  const rssSamples = rss.stop()

  // The stream: wait until it has every event the database holds and every machine's last
  // state (a machine message follows the events of its change), or 10 s.
  const db = new Database(opts.stateDb, { readonly: true, fileMustExist: true })
  const count = () => (db.prepare('SELECT COUNT(*) AS n FROM events WHERE id > ?').get(firstId) as { n: number }).n
  const dbEvents = count()
  const deployedNow = (
    db.prepare("SELECT COUNT(*) AS n FROM machines WHERE state = 'deployed' AND mac LIKE '02:00:00:%'").get() as {
      n: number
    }
  ).n
  const streamDeployed = () =>
    [...stream.states.entries()].filter(([mac, s]) => mac.startsWith('02:00:00:') && s === 'deployed').length
  const waitUntil = Date.now() + 10_000
  while ((stream.events < dbEvents || streamDeployed() < deployedNow) && Date.now() < waitUntil) await sleep(50)
  stream.close()

  // Every machine: deployed, with the events its agent's requests make.
  const missing: string[] = []
  const rows = db.prepare('SELECT mac, kind, fields FROM events WHERE id > ? ORDER BY id').all(firstId) as {
    mac: string
    kind: string
    fields: string
  }[]
  const byMac = new Map<string, string[]>()
  for (const r of rows) {
    const k = r.kind === 'stage' ? `stage ${(JSON.parse(r.fields) as { stage: string }).stage}` : r.kind
    byMac.set(r.mac, [...(byMac.get(r.mac) ?? []), k])
  }
  const expected = [
    'enlisting',
    'inventory',
    'assigned',
    'stage write',
    'stage verify',
    'stage done',
    'installed',
    'rebooting',
    'first-boot',
  ]
  for (const key of sentAt.keys()) {
    const [mac, ...kind] = key.split(' ')
    const have = byMac.get(mac!) ?? []
    const want = kind.join(' ')
    const n = have.filter((k) => k === want).length
    if (n !== 1) missing.push(`${mac}: ${n} "${want}" events in the database, expected 1`)
  }
  if (sentAt.size !== opts.machines * expected.length)
    missing.push(`${sentAt.size} events caused, expected ${opts.machines * expected.length}`)
  const deployedInDb = deployedNow
  db.close()

  const latency: ControlResult['latency'] = {}
  const all: number[] = []
  for (const [route, list] of latencies) {
    latency[route] = stats(list)
    if (!route.includes('operator')) all.push(...list)
  }
  latency['all agent requests'] = stats(all)
  return {
    machines: opts.machines,
    seconds,
    requests,
    failures,
    latency,
    dbEvents,
    streamEvents: stream.events,
    missing,
    lag: {
      p50: percentile(stream.lags, 50) / 1000,
      p99: percentile(stream.lags, 99) / 1000,
      max: Math.max(...stream.lags) / 1000,
    },
    deployedInDb,
    deployedOnStream: [...stream.states.entries()].filter(([mac, s]) => mac.startsWith('02:00:00:') && s === 'deployed')
      .length,
    serveCpu,
    clientCpu: (clientUsage.user + clientUsage.system) / 1e6,
    serveRssMax: Math.max(...rssSamples),
    serveRssStart: rssSamples[0] ?? 0,
  }
}

function stats(list: number[]) {
  return { n: list.length, p50: percentile(list, 50), p99: percentile(list, 99), max: Math.max(...list) }
}

/** POST /api/v1/machines/MAC/report, as the installed system's first-boot script sends it (src/seed/first-boot-script.ts). */
async function firstBoot(url: string, mac: string, token: string, body: Record<string, unknown>): Promise<unknown> {
  const res = await fetch(`${url}/api/v1/machines/${mac}/report`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`report: ${res.status} ${await res.text()}`)
  return await res.json()
}

/** The dashboard's stream, read as EventSource reads it: event messages counted, their lag, each machine's last state. */
async function openStream(url: string, afterId: number, sentAt: Map<string, Sent>) {
  const state = { events: 0, lags: [] as number[], states: new Map<string, string>(), close: () => {} }
  const req = http.get(url, { headers: { accept: 'text/event-stream', 'last-event-id': String(afterId) } })
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', resolve).on('error', reject)
  })
  if (res.statusCode !== 200) throw new Error(`GET /api/v1/stream: ${res.statusCode}`)
  let buffer = ''
  res.setEncoding('utf8')
  res.on('data', (text: string) => {
    const now = performance.now()
    buffer += text
    let end = buffer.indexOf('\n\n')
    while (end >= 0) {
      const message = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      end = buffer.indexOf('\n\n')
      const event = /^event: (.*)$/m.exec(message)?.[1]
      const data = /^data: (.*)$/m.exec(message)?.[1]
      if (!event || data === undefined) continue
      const doc = JSON.parse(data) as {
        id?: number
        mac?: string
        kind?: string
        fields?: { stage?: string }
        machine?: { state: string }
      }
      if (event === 'event') {
        state.events++
        const key = `${doc.mac} ${doc.kind === 'stage' ? `stage ${doc.fields?.stage}` : doc.kind}`
        const sent = sentAt.get(key)
        if (sent) state.lags.push(now - sent.at)
      } else if (event === 'machine' && doc.mac && doc.machine) state.states.set(doc.mac, doc.machine.state)
    }
  })
  state.close = () => req.destroy()
  return state
}

export const STATE_DB = (stateDir: string) => path.join(stateDir, 'serve.sqlite')
