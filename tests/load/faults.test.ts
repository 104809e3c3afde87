// Faults under load (issue 15): `hwimage serve` (a child process, the real CLI) is killed
// with SIGKILL while 32 clients download an image with the installer's own HTTP source
// (src/io/http-source.ts: Range + If-Range resumes) and 100 simulated deploy agents (the
// agent's own ServeClient, with its retries and Idempotency-Keys) report to it; it is
// started again on the same port. Afterwards every download has the right SHA-256, every
// agent finished its deploy (deployed), and the database holds each acknowledged event
// exactly once: none lost, none duplicated. `make test-load`; not in `make test`.

import assert from 'node:assert/strict'
import Database from 'better-sqlite3'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Inventory } from '../../src/deploy/inventory-types.js'
import { ServeClient } from '../../src/deploy/serve-client.js'
import { openHttpSource } from '../../src/io/http-source.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const MiB = 1 << 20
const IMAGE_BYTES = 128 * MiB
const DOWNLOADS = 32
const AGENTS = 100
/** Each agent's pace: an event and a progress report every this long, like an installing machine. */
const AGENT_STEP_MS = 500

let dir: string
let port: number
let config: string
let imageSha: string
let serve: ChildProcess | undefined

const macOf = (i: number) =>
  `52:54:00:10:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-load-'))
  const images = path.join(dir, 'images')
  await fsp.mkdir(images)
  // Random bytes: a resume at a wrong offset cannot give the right digest.
  const fh = await fsp.open(path.join(images, 'load.img.zst'), 'w')
  const h = createHash('sha256')
  for (let i = 0; i < IMAGE_BYTES / MiB; i++) {
    const b = randomBytes(MiB)
    h.update(b)
    await fh.write(b)
  }
  await fh.close()
  imageSha = h.digest('hex')
  await fsp.writeFile(path.join(images, 'SHA256SUMS'), `${imageSha}  load.img.zst\n`)
  port = await freePort()
  const machines = Array.from({ length: AGENTS }, (_, i) => `  ${macOf(i)}: { name: node-${i}, image: default }\n`)
  config = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    config,
    `listen: { host: 127.0.0.1, port: ${port} }\npublic_url: http://127.0.0.1:${port}\nstate_dir: ${path.join(dir, 'state')}\nunknown_macs: ignore\nimages:\n  default: ${images}\nmachines:\n${machines.join('')}`,
  )
})
after(async () => {
  if (serve && serve.exitCode === null) serve.kill('SIGKILL')
  await fsp.rm(dir, { recursive: true, force: true })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
    s.on('error', reject)
  })
}

/** Starts `hwimage serve CONFIG` from the checkout and waits until it answers. */
async function startServe(log: string): Promise<ChildProcess> {
  const out = await fsp.open(path.join(dir, log), 'w')
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'serve', config, '--json'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', out.fd],
  })
  void out.close()
  const until = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}: see ${log}`)
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/machines`)
      await r.arrayBuffer()
      if (r.ok) return child
    } catch {}
    if (Date.now() > until) throw new Error('serve did not answer within 30 s')
    await sleep(50)
  }
}

const inventory = (mac: string): Inventory => ({
  version: 1,
  firmware: 'uefi',
  cpus: 2,
  memoryBytes: 2 ** 31,
  pci: [],
  disks: [
    {
      path: '/dev/vda',
      name: 'vda',
      sizeBytes: 8 * 2 ** 30,
      logicalSectorSize: 512,
      physicalSectorSize: 512,
      rotational: false,
      removable: false,
    },
  ],
  nics: [{ name: 'eth0', mac, link: true }],
})

interface AgentRun {
  mac: string
  client: ServeClient
  /** The "note" events serve acknowledged, by number. */
  acked: number[]
  progressFailures: number
}

/** One simulated machine: inventory, then a note event and a progress report per step until `stop`, then installed and the first-boot report. */
async function runAgent(mac: string, token: string, stop: () => boolean): Promise<AgentRun> {
  const client = new ServeClient({
    url: `http://127.0.0.1:${port}`,
    mac,
    token,
    attempts: 10,
    retryDelayMs: 250,
    maxDelayMs: 4000,
  })
  const run: AgentRun = { mac, client, acked: [], progressFailures: 0 }
  const task = await client.inventory(inventory(mac))
  assert.equal(task.action, 'install', `${mac}: ${JSON.stringify(task)}`)
  await sleep(Math.random() * AGENT_STEP_MS)
  for (let n = 1; !stop(); n++) {
    await client.event('note', { n })
    run.acked.push(n)
    await client.progress({ stage: 'write', done: n * MiB, total: 1000 * MiB }).catch(() => run.progressFailures++)
    await sleep(AGENT_STEP_MS)
  }
  await client.event('installed', { report: { simulated: true } })
  await client.report({ simulated: true })
  return run
}

interface DownloadRun {
  sha256: string
  bytes: number
  resumes: number
}

/** What the installer does with an http source: stream it from the start, resuming where a dropped connection stopped. */
async function download(url: string, progress: { bytes: number }): Promise<DownloadRun> {
  let resumes = 0
  const src = await openHttpSource(url, { retryDelayMs: 250, retries: 8, onResume: () => resumes++ })
  const h = createHash('sha256')
  let bytes = 0
  for await (const chunk of src.stream()) {
    h.update(chunk)
    bytes += chunk.length
    progress.bytes += chunk.length
  }
  await src.close()
  return { sha256: h.digest('hex'), bytes, resumes }
}

test('serve killed with SIGKILL under 32 downloads and 100 agents, started again on the same port: downloads resume with the right digest, agents retry and finish, no event lost or duplicated', async (t) => {
  serve = await startServe('serve-1.log')
  const base = `http://127.0.0.1:${port}`
  // Each machine network boots (iPXE) and gets its token, as in a real deploy.
  const tokens = new Map<string, string>()
  for (let i = 0; i < AGENTS; i++) {
    const mac = macOf(i)
    const script = await (await fetch(`${base}/boot/ipxe?mac=${mac}`)).text()
    tokens.set(mac, /hwimage\.token=(\S+)/.exec(script)![1]!)
  }
  let stopping = false
  const progress = { bytes: 0 }
  const downloads = Array.from({ length: DOWNLOADS }, () => download(`${base}/images/default/load.img.zst`, progress))
  const agents = [...tokens].map(([mac, token]) => runAgent(mac, token, () => stopping))
  const settled = Promise.allSettled([...downloads, ...agents])

  // Kill when a quarter of the bytes are through (every download is under way) and the agents are reporting.
  const total = DOWNLOADS * IMAGE_BYTES
  const until = Date.now() + 120_000
  while (progress.bytes < total / 4 && Date.now() < until) await sleep(20)
  assert.ok(progress.bytes < total * 0.9, `the downloads were almost done (${progress.bytes} bytes) before the kill`)
  const atKill = progress.bytes
  serve.kill('SIGKILL')
  await new Promise((r) => serve!.once('exit', r))
  const killedAt = Date.now()
  serve = await startServe('serve-2.log')
  const downMs = Date.now() - killedAt
  // Let the agents report a while to the new serve, then let them finish.
  await sleep(3000)
  stopping = true
  const results = await settled
  const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
  assert.deepEqual(
    failed.map((f) => String(f.reason)),
    [],
    'every download and every agent finished',
  )
  const dl = (await Promise.all(downloads)) as DownloadRun[]
  const runs = (await Promise.all(agents)) as AgentRun[]

  for (const [i, d] of dl.entries()) {
    assert.equal(d.bytes, IMAGE_BYTES, `download ${i}`)
    assert.equal(d.sha256, imageSha, `download ${i}: the digest of SHA256SUMS`)
  }
  const resumed = dl.filter((d) => d.resumes > 0).length
  assert.equal(resumed, DOWNLOADS, 'every download was cut by the kill and resumed')
  const retries = runs.reduce((n, r) => n + r.client.retries, 0)
  const retriedAgents = runs.filter((r) => r.client.retries > 0).length
  assert.ok(retriedAgents > 0, 'agents had to retry')

  // Stop serve cleanly, then count in its database.
  serve.kill('SIGTERM')
  await new Promise((r) => serve!.once('exit', r))
  const db = new Database(path.join(dir, 'state', 'serve.sqlite'), { readonly: true })
  try {
    let notes = 0
    for (const r of runs) {
      const m = db.prepare('SELECT state FROM machines WHERE mac = ?').get(r.mac) as { state: string }
      assert.equal(m.state, 'deployed', r.mac)
      const got = (
        db.prepare("SELECT fields FROM events WHERE mac = ? AND kind = 'note' ORDER BY id").all(r.mac) as Array<{
          fields: string
        }>
      ).map((e) => (JSON.parse(e.fields) as { n: number }).n)
      assert.deepEqual(got, r.acked, `${r.mac}: each acknowledged note once, in order, none lost or doubled`)
      notes += got.length
      const count = (kind: string) =>
        (db.prepare('SELECT COUNT(*) AS n FROM events WHERE mac = ? AND kind = ?').get(r.mac, kind) as { n: number }).n
      assert.equal(count('installed'), 1, `${r.mac}: installed once`)
      assert.equal(count('first-boot'), 1, `${r.mac}: first boot once`)
      assert.equal(count('inventory'), 1, `${r.mac}: inventory once`)
    }
    const replayed = (await fsp.readFile(path.join(dir, 'serve-2.log'), 'utf8'))
      .split('\n')
      .filter((l) => l.includes('"event":"replayed"')).length
    const keys = (db.prepare('SELECT COUNT(*) AS n FROM agent_requests').get() as { n: number }).n
    t.diagnostic(
      `killed at ${(atKill / MiB).toFixed(0)} of ${total / MiB} MiB; serve answered again ${downMs} ms after the kill; ` +
        `${resumed}/${DOWNLOADS} downloads resumed; ${retriedAgents}/${AGENTS} agents retried (${retries} retries); ` +
        `${notes} note events, each once; ${keys} request keys stored, ${replayed} retries answered as replays; ` +
        `${runs.reduce((n, r) => n + r.progressFailures, 0)} progress reports lost (sent once by design)`,
    )
  } finally {
    db.close()
  }
})
