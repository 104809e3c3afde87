// The deploy agent against a real serve (127.0.0.1, SQLite state in a temp dir): the
// inventory from a synthetic sysfs, the disk a garbage-filled file named in the synthetic
// /dev, the image a fixture served from a build-like directory. Everything is asserted
// through serve's JSON API and on the disk.

import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { decodeGpt } from '../disk/gpt.js'
import { HwimageError } from '../errors.js'
import { garbageFile, makeFixtureImage, type FixtureImage } from '../install/image.fixture.js'
import { assertInstalled, assertNoTable, fileDigest, readBytes } from '../install/install.fixture.js'
import { loadServeConfig } from '../serve/config.js'
import { json, rawRequest } from '../serve/serve.fixture.js'
import { startServe, type RunningServe } from '../serve/server.js'
import { run } from '../tools/run.js'
import type { BootEntrySpec } from '../tools/efibootmgr.js'
import { runAgent, runAgentRetrying } from './agent.js'
import { SysfsFixture } from './sysfs.fixture.js'

const MiB = 1 << 20
const DISK = 64 * MiB
const GOOD = '52:54:00:00:02:01'
const SMALL = '52:54:00:00:02:02'
const STRANGER = '52:54:00:00:02:03'
const BADSUM = '52:54:00:00:02:04'
const NEWCOMER = '52:54:00:00:02:05'
const RETRIER = '52:54:00:00:02:06'
const SEED =
  'hostname: node-1\ninstance_id: agent-test-1\nusers:\n  - name: ops\n    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAGENTTESTKEY ops@x"]\n'

let dir: string
let fx: FixtureImage
let serve: RunningServe
const logs: Array<Record<string, unknown>> = []
const trees: SysfsFixture[] = []

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as net.AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-agent-'))
  const out = path.join(dir, 'out')
  await fsp.mkdir(out)
  fx = await makeFixtureImage(out, { formats: ['zst'] })
  await fsp.writeFile(path.join(dir, 'seed.yaml'), SEED)
  // The same image served with a SHA256SUMS that does not match it (a corrupt mirror).
  const bad = path.join(dir, 'bad')
  await fsp.mkdir(bad)
  for (const f of [fx.zst, fx.bmap]) await fsp.copyFile(f, path.join(bad, path.basename(f)))
  await fsp.writeFile(path.join(bad, 'SHA256SUMS'), `${'0'.repeat(64)}  ${path.basename(fx.zst)}\n`)
  // public_url is what the task's image URLs are made of: the port serve will listen on.
  const port = await freePort()
  const file = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    file,
    `listen: { host: 127.0.0.1, port: ${port} }
public_url: http://127.0.0.1:${port}
state_dir: ${path.join(dir, 'state')}
unknown_macs: enlist
images:
  default: ${out}
  bad: ${path.join(dir, 'bad')}
machines:
  ${GOOD}: { name: node-1, image: default, seed: ${path.join(dir, 'seed.yaml')}, disk_hints: "size=>=60M" }
  ${SMALL}: { name: node-2, image: default }
  ${STRANGER}: { name: node-3, image: default }
  ${BADSUM}: { name: node-4, image: bad }
  ${RETRIER}: { name: node-6, image: default, disk_hints: "serial=no-such-disk" }
`,
  )
  serve = await startServe(await loadServeConfig(file), { log: (r) => logs.push(r) })
})
after(async () => {
  await serve?.close()
  for (const t of trees) await t.remove()
  if (dir) await fsp.rm(dir, { recursive: true, force: true })
})

/** A machine: a virtio disk "vda" (a garbage file of `diskBytes` in its /dev), a virtio NIC with a link; UEFI when `efi`. */
async function machineTree(mac: string, diskBytes: number, efi = false) {
  const f = await SysfsFixture.create()
  trees.push(f)
  const blk = await f.pci('0000:00:05.0', {
    vendor: '1af4',
    device: '1042',
    sv: '1af4',
    sd: '1100',
    class: '010000',
    driver: 'virtio-pci',
  })
  await f.write(`${blk}/virtio1/block/vda`, {
    size: String(diskBytes / 512),
    'queue/logical_block_size': '512',
    'queue/physical_block_size': '512',
    'queue/rotational': '0',
    removable: '0',
    serial: `disk-${mac.slice(-2)}`,
  })
  await f.link('block/vda', `${blk}/virtio1/block/vda`)
  const nic = await f.pci('0000:00:03.0', {
    vendor: '1af4',
    device: '1000',
    sv: '1af4',
    sd: '0001',
    class: '020000',
    driver: 'virtio-pci',
  })
  await f.write(`${nic}/virtio0/net/ens3`, { address: mac, carrier: '1' })
  await f.link('class/net/ens3', `${nic}/virtio0/net/ens3`)
  if (efi) await f.write('firmware/efi', { fw_platform_size: '64' })
  await f.write('devices/system/cpu', { online: '0-1' })
  await f.write('proc', { meminfo: 'MemTotal:        2048000 kB' })
  const devfs = path.join(f.root, 'dev')
  await fsp.mkdir(devfs)
  const disk = path.join(devfs, 'vda')
  await garbageFile(disk, diskBytes, mac.charCodeAt(16))
  return { roots: { sysfs: f.root, procfs: path.join(f.root, 'proc'), devfs }, disk }
}

async function bootToken(mac: string): Promise<string> {
  const r = await rawRequest(serve.url, `/boot/ipxe?mac=${mac}`)
  assert.equal(r.status, 200)
  return /hwimage\.token=(\S+)/.exec(r.body.toString())![1]!
}
interface Shown {
  machine: {
    state: string
    progress: { stage: string; done: number } | null
    installReport: { bytes: { written: number }; seed?: { partition: number } } | null
    error: { code: string; message: string; logTail: string } | null
  }
  events: Array<{ kind: string; fields: Record<string, unknown> }>
}
const show = async (mac: string) => json<Shown>(await rawRequest(serve.url, `/api/v1/machines/${mac}`))
const requests = (mac: string, what: string) =>
  logs.filter((l) => l.event === 'request' && String(l.path).startsWith(`/api/v1/machines/${mac}/${what}`))

test('the agent installs the assigned image and seed onto the disk its hints choose, reports progress and the install, makes the shim BootNext on UEFI', async () => {
  const m = await machineTree(GOOD, DISK, true)
  const token = await bootToken(GOOD)
  const lines: string[] = []
  const bootEntries: BootEntrySpec[] = []
  let rebooted = 0
  const r = await runAgent({
    identity: { url: serve.url, mac: GOOD, token, enlist: false },
    roots: m.roots,
    log: (l) => lines.push(l),
    effects: {
      setBootNext: async (spec) => (bootEntries.push(spec), '0007'),
      reboot: async () => void rebooted++,
    },
  })
  assert.equal(r.outcome, 'installed')
  assert.equal(r.disk, m.disk, 'the disk the hints chose in the inventory')
  assert.equal(rebooted, 1)
  assert.deepEqual(bootEntries, [{ disk: m.disk, part: 15, label: 'hwimage', loader: '\\EFI\\debian\\shimx64.efi' }])
  assert.equal(r.bootEntry, '0007')

  const { machine, events } = await show(GOOD)
  assert.equal(machine.state, 'installed')
  assert.equal(machine.installReport?.bytes.written, r.report!.bytes.written)
  assert.ok(machine.installReport?.seed, 'the report has the seed partition')
  assert.equal(machine.progress?.stage, 'done')
  const kinds = events.map((e) => e.kind)
  for (const k of ['inventory', 'preflight', 'stage', 'installed', 'boot-entry', 'rebooting'])
    assert.ok(kinds.includes(k), `event ${k} in ${kinds.join(', ')}`)
  assert.deepEqual(
    events.filter((e) => e.kind === 'state').map((e) => e.fields.to),
    ['deploying', 'installed'],
  )
  // At most ~2 progress reports a second.
  const progress = requests(GOOD, 'progress')
  assert.ok(progress.length >= 1)
  const span = (Date.parse(String(progress.at(-1)!.time)) - Date.parse(String(progress[0]!.time))) / 1000
  assert.ok(progress.length <= 2 * span + 2, `${progress.length} progress reports in ${span} s`)
  assert.ok(!lines.join('\n').includes(token), 'the token is not logged')
  assert.ok(
    !logs
      .map((l) => JSON.stringify(l))
      .join('\n')
      .includes(token),
    "the token is not in serve's log",
  )

  const scratch = await fsp.mkdtemp(path.join(dir, 'scratch-'))
  await assertInstalled(m.disk, fx, DISK, scratch)
  const table = JSON.parse((await run(['sfdisk', '--json', m.disk])).stdout) as {
    partitiontable: { partitions: { start: number; size: number; name?: string }[] }
  }
  const last = [...table.partitiontable.partitions].sort((a, b) => b.start - a.start)[0]!
  assert.equal(last.name, 'cidata')
  const vol = path.join(scratch, 'cidata.part')
  await fsp.writeFile(vol, await readBytes(m.disk, last.start * 512, last.size * 512))
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' }
  assert.match((await run(['mdir', '-i', vol, '::'], { env })).stdout, /Volume in drive : is CIDATA/)
  assert.match((await run(['mtype', '-i', vol, '::meta-data'], { env })).stdout, /agent-test-1/)
})

test('a wrong token is refused: nothing is installed and the machine does not move', async () => {
  const m = await machineTree(STRANGER, DISK)
  await bootToken(STRANGER)
  const before = await fileDigest(m.disk)
  await assert.rejects(
    runAgent({
      identity: { url: serve.url, mac: STRANGER, token: 'not-the-token', enlist: false },
      roots: m.roots,
      reboot: false,
    }),
    (e: unknown) => e instanceof HwimageError && /403/.test(e.message) && !e.message.includes('not-the-token'),
  )
  assert.equal(await fileDigest(m.disk), before, 'the disk is untouched')
  const { machine, events } = await show(STRANGER)
  assert.equal(machine.state, 'deploying')
  assert.ok(!events.some((e) => e.kind === 'inventory' || e.kind === 'failed'))
})

test('a disk smaller than the image: the agent reports TARGET_TOO_SMALL with its log, stays, and the disk has no valid GPT', async () => {
  const small = 16 * MiB
  const m = await machineTree(SMALL, small)
  const token = await bootToken(SMALL)
  let rebooted = 0
  await assert.rejects(
    runAgent({
      identity: { url: serve.url, mac: SMALL, token, enlist: false },
      roots: m.roots,
      effects: { reboot: async () => void rebooted++ },
    }),
    (e: unknown) => e instanceof HwimageError && e.code === 'TARGET_TOO_SMALL',
  )
  assert.equal(rebooted, 0, 'no reboot after a failure')
  const { machine } = await show(SMALL)
  assert.equal(machine.state, 'failed')
  assert.equal(machine.error?.code, 'TARGET_TOO_SMALL')
  assert.match(machine.error!.message, /Cannot/)
  assert.match(machine.error!.logTail, /installing http:\/\/127\.0\.0\.1:\d+\/images\/default\/fixture\.img\.zst onto /)
  const task = json<{ action: string }>(
    await rawRequest(serve.url, `/api/v1/machines/${SMALL}/task`, { headers: { authorization: `Bearer ${token}` } }),
  )
  assert.equal(task.action, 'stop')
  // Booted again before an operator redeploys: the agent is told to stay, and stays.
  const again = await runAgent({
    identity: { url: serve.url, mac: SMALL, token, enlist: false },
    roots: m.roots,
    effects: { reboot: async () => void rebooted++ },
  })
  assert.equal(again.outcome, 'stopped')
  assert.equal(rebooted, 0)
  assert.equal((await show(SMALL)).machine.state, 'failed')
  const head = await readBytes(m.disk, 0, MiB)
  const tail = await readBytes(m.disk, small - MiB, MiB)
  assert.throws(
    () => decodeGpt(head, tail, BigInt(small), 512),
    (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_GPT',
    'no valid GPT on the disk',
  )
})

test('an image whose digest does not match, found after writing: failed with CHECKSUM_MISMATCH, both ends of the disk zeroed', async () => {
  const m = await machineTree(BADSUM, DISK)
  const token = await bootToken(BADSUM)
  await assert.rejects(
    runAgent({ identity: { url: serve.url, mac: BADSUM, token, enlist: false }, roots: m.roots, reboot: false }),
    (e: unknown) => e instanceof HwimageError && e.code === 'CHECKSUM_MISMATCH',
  )
  const { machine, events } = await show(BADSUM)
  assert.equal(machine.state, 'failed')
  assert.equal(machine.error?.code, 'CHECKSUM_MISMATCH')
  assert.ok(
    events.some((e) => e.kind === 'stage'),
    'progress was reported before the failure',
  )
  await assertNoTable(m.disk)
})

test('an unknown machine enlists itself, waits for an operator, and installs once assigned', async () => {
  const m = await machineTree(NEWCOMER, DISK)
  const lines: string[] = []
  const agent = runAgent({
    identity: { url: serve.url, mac: NEWCOMER, enlist: true },
    roots: m.roots,
    reboot: false,
    pollMs: 100,
    log: (l) => lines.push(l),
  })
  for (let i = 0; (await show(NEWCOMER)).machine?.state !== 'enlisted'; i++) {
    assert.ok(i < 100, 'the machine enlists')
    await new Promise((r) => setTimeout(r, 50))
  }
  const a = await rawRequest(serve.url, `/api/v1/machines/${NEWCOMER}/assign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: 'default', disk_hints: ['serial=disk-05'] }),
  })
  assert.equal(a.status, 200, a.body.toString())
  const r = await agent
  assert.equal(r.outcome, 'installed')
  assert.equal(r.disk, m.disk)
  assert.ok(
    lines.some((l) => /serve: wait \(no image assigned/.test(l)),
    lines.join('\n'),
  )
  assert.equal((await show(NEWCOMER)).machine.state, 'installed')
  await assertInstalled(m.disk, fx, DISK, await fsp.mkdtemp(path.join(dir, 'scratch-')))
})

test('runAgentRetrying(): no disk matches the hints (failed, the disks listed); the operator assigns new hints and the agent installs in place; a redeploy revokes the token and the machine reboots', async () => {
  const m = await machineTree(RETRIER, DISK)
  const token = await bootToken(RETRIER)
  const lines: string[] = []
  let rebooted = 0
  const assign = async (body: Record<string, unknown>, what = 'assign') => {
    const r = await rawRequest(serve.url, `/api/v1/machines/${RETRIER}/${what}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    assert.equal(r.status, 200, r.body.toString())
  }
  const agent = runAgentRetrying({
    identity: { url: serve.url, mac: RETRIER, token, enlist: false },
    roots: m.roots,
    retryMs: 100,
    log: (l) => lines.push(l),
    effects: { reboot: async () => void rebooted++ },
  })
  for (let i = 0; (await show(RETRIER)).machine.state !== 'failed'; i++) {
    assert.ok(i < 200, `the deploy fails: ${lines.join('\n')}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const failed = (await show(RETRIER)).machine
  assert.match(failed.error!.message, /no-such-disk/)
  assert.match(failed.error!.message, /vda/, 'the disks are listed')
  await assign({ image: 'default', disk_hints: ['serial=disk-06'] })
  const r = await agent
  assert.equal(r.outcome, 'installed')
  assert.equal(rebooted, 1, 'rebooted into the installed disk')
  assert.equal((await show(RETRIER)).machine.state, 'installed')
  await assertInstalled(m.disk, fx, DISK, await fsp.mkdtemp(path.join(dir, 'scratch-')))

  // An operator redeploys: this deploy's token no longer opens serve's API, so the machine reboots to get a new one.
  await assign({}, 'redeploy')
  const again = await runAgentRetrying({
    identity: { url: serve.url, mac: RETRIER, token, enlist: false },
    roots: m.roots,
    retryMs: 100,
    log: (l) => lines.push(l),
    effects: { reboot: async () => void rebooted++ },
  })
  assert.equal(again.outcome, 'rebooting')
  assert.equal(rebooted, 2)
  assert.ok(lines.some((l) => /refused this deploy's token/.test(l)))
})
