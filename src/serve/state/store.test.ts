import assert from 'node:assert/strict'
import Database from 'better-sqlite3'
import { promises as fsp, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import type { Inventory } from '../../deploy/inventory-types.js'
import { HwimageError } from '../../errors.js'
import { nextState } from '../machine-states.js'
import { MachineStore, StateConflictError, tokenDigest } from './store.js'

let dir: string
let n = 0
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-state-'))
})
after(() => fsp.rm(dir, { recursive: true, force: true }))
const fresh = () => path.join(dir, `state-${++n}`)

const MAC = '52:54:00:00:00:01'
const inventory: Inventory = {
  version: 1,
  firmware: 'uefi-secureboot',
  cpus: 2,
  memoryBytes: 2 ** 31,
  pci: [],
  disks: [],
  nics: [{ name: 'eth0', mac: MAC, link: true }],
}
const configured = (image?: string) => ({
  mac: MAC,
  name: 'node-1',
  image,
  seedYaml: 'hostname: node-1\n',
  diskHints: ['size=>=10G'],
})

test('a configured machine with an image: new → deploying at boot → installed → deployed, each state timed and evented', () => {
  const s = MachineStore.open(fresh())
  s.syncConfigured([configured('default')])
  assert.equal(s.get(MAC)!.state, 'new')
  const d = s.boot(MAC, 'ignore', 'ipxe')
  assert.equal(d.action, 'deploy')
  assert.equal(s.get(MAC)!.state, 'deploying')
  s.recordInventory(MAC, inventory)
  s.recordProgress(MAC, { stage: 'write', done: 1, total: 2 })
  s.recordEvent(MAC, 'installed', { report: { bytes: { written: 1 } } })
  assert.equal(s.get(MAC)!.state, 'installed')
  assert.equal(s.boot(MAC, 'ignore', 'ipxe').action, 'local', 'an installed machine boots its disk')
  s.recordFirstBoot(MAC, { hostname: 'node-1' })
  const m = s.get(MAC)!
  assert.equal(m.state, 'deployed')
  assert.deepEqual(Object.keys(m.stateTimes).sort(), ['deployed', 'deploying', 'installed', 'new'])
  assert.deepEqual(m.installReport, { bytes: { written: 1 } })
  assert.deepEqual(m.firstBootReport, { hostname: 'node-1' })
  assert.equal(m.inventory!.firmware, 'uefi-secureboot')
  const kinds = s.events(MAC).map((e) => e.kind)
  for (const k of ['configured', 'boot', 'state', 'inventory', 'stage', 'installed', 'first-boot'])
    assert.ok(kinds.includes(k), k)
  s.close()
})

test('progress that arrives after a later report of the same run is dropped: progress never goes back, no stage event twice', () => {
  const s = MachineStore.open(fresh())
  s.syncConfigured([configured('default')])
  s.boot(MAC, 'ignore', 'ipxe')
  s.recordProgress(MAC, { stage: 'write', done: 1, run: 'r1', seq: 1 })
  s.recordProgress(MAC, { stage: 'verify', done: 5, run: 'r1', seq: 3 })
  // seq 2, overtaken on the way (a slow request): not stored.
  s.recordProgress(MAC, { stage: 'write', done: 2, run: 'r1', seq: 2 })
  assert.deepEqual((s.get(MAC)!.progress as { stage: string; done: number }).stage, 'verify')
  const stages = () =>
    s
      .events(MAC)
      .filter((e) => e.kind === 'stage')
      .map((e) => (e.fields as { stage: string }).stage)
  assert.deepEqual(stages(), ['write', 'verify'])
  // A new run (the agent started again) is stored whatever its numbers; so is unnumbered progress.
  s.recordProgress(MAC, { stage: 'write', done: 0, run: 'r2', seq: 1 })
  assert.equal((s.get(MAC)!.progress as { done: number }).done, 0)
  s.recordProgress(MAC, { stage: 'verify', done: 3 })
  assert.deepEqual(stages(), ['write', 'verify', 'write', 'verify'])
  s.close()
})

test('an unknown MAC: ignored, or enlisted (new → enlisted with its inventory), then assigned → deploying', () => {
  const s = MachineStore.open(fresh())
  assert.deepEqual(s.boot(MAC, 'ignore', 'ipxe'), { action: 'ignore' })
  assert.equal(s.get(MAC), undefined, 'ignored: nothing stored')
  assert.equal(s.boot(MAC, 'enlist', 'ipxe').action, 'deploy')
  assert.equal(s.get(MAC)!.state, 'new')
  s.recordInventory(MAC, inventory)
  assert.equal(s.get(MAC)!.state, 'enlisted')
  s.assign(MAC, { image: 'default' })
  assert.equal(s.get(MAC)!.state, 'deploying')
  s.close()
})

test('a failure is named and kept; assigning an installed machine is a conflict; redeploy revokes the old tokens', () => {
  const s = MachineStore.open(fresh())
  s.syncConfigured([configured('default')])
  const d = s.boot(MAC, 'ignore', 'ipxe')
  assert.ok(d.action === 'deploy')
  s.recordEvent(MAC, 'failed', { code: 'DEVICE_SELECT', message: 'no disk matches the hints', logTail: 'sda 10G' })
  assert.equal(s.get(MAC)!.state, 'failed')
  assert.deepEqual(s.get(MAC)!.error, {
    code: 'DEVICE_SELECT',
    message: 'no disk matches the hints',
    logTail: 'sda 10G',
  })
  s.redeploy(MAC)
  assert.equal(s.get(MAC)!.state, 'deploying')
  assert.equal(s.checkToken(MAC, d.token), 'wrong', 'the token of the failed deploy no longer works')
  s.recordEvent(MAC, 'installed', {})
  assert.throws(() => s.assign(MAC, { image: 'default' }), StateConflictError)
  assert.throws(() => s.recordInventory(MAC, inventory), StateConflictError)
  assert.equal(s.get(MAC)!.state, 'installed', 'a refused change changes nothing')
  assert.throws(
    () => s.recordProgress('52:54:00:99:99:99', { stage: 'x' }),
    (e: unknown) => e instanceof HwimageError && e.code === 'NOT_FOUND',
  )
  s.close()
})

test("tokens: a missing one, a wrong one, another machine's one are refused; only digests are stored", () => {
  const dirState = fresh()
  const s = MachineStore.open(dirState)
  s.syncConfigured([configured('default'), { ...configured('default'), mac: '52:54:00:00:00:02' }])
  const d1 = s.boot(MAC, 'ignore', 'ipxe')
  const d2 = s.boot('52:54:00:00:00:02', 'ignore', 'ipxe')
  assert.ok(d1.action === 'deploy' && d2.action === 'deploy')
  assert.equal(s.checkToken(MAC, d1.token), 'ok')
  assert.equal(s.checkToken(MAC, undefined), 'missing')
  assert.equal(s.checkToken(MAC, d1.token + 'x'), 'wrong')
  assert.equal(s.checkToken(MAC, d2.token), 'wrong')
  assert.equal(s.checkToken('52:54:00:00:00:03', d1.token), 'wrong')
  s.close()
  const bytes =
    readFileSync(path.join(dirState, 'serve.sqlite')).toString('latin1') +
    readFileSync(path.join(dirState, 'serve.sqlite-wal'), { flag: 'a+' }).toString('latin1')
  assert.ok(!bytes.includes(d1.token), 'the token itself is not in the database')
  const db = new Database(path.join(dirState, 'serve.sqlite'), { readonly: true })
  assert.ok(db.prepare('SELECT 1 FROM tokens WHERE hash = ?').get(tokenDigest(d1.token)), 'its digest is')
  db.close()
})

test('the state survives closing and reopening: machines, events, tokens; a newer schema is refused', () => {
  const d = fresh()
  const a = MachineStore.open(d)
  a.syncConfigured([configured('default')])
  const b1 = a.boot(MAC, 'ignore', 'ipxe')
  a.recordInventory(MAC, inventory)
  const events = a.events(MAC).length
  a.close()
  const b = MachineStore.open(d)
  assert.equal(b.get(MAC)!.state, 'deploying')
  assert.equal(b.get(MAC)!.inventory!.cpus, 2)
  assert.equal(b.events(MAC).length, events)
  assert.ok(b1.action === 'deploy' && b.checkToken(MAC, b1.token) === 'ok')
  b.syncConfigured([configured('default')])
  assert.equal(b.get(MAC)!.state, 'deploying', 'a restart does not send a deploying machine back to new')
  b.close()
  const db = new Database(path.join(d, 'serve.sqlite'))
  db.prepare('UPDATE schema_version SET version = 99').run()
  db.close()
  assert.throws(
    () => MachineStore.open(d),
    (e: unknown) => e instanceof HwimageError && e.code === 'CONFIG_INVALID' && /schema version 99/.test(e.message),
  )
})

test('the database is in WAL mode', () => {
  const d = fresh()
  MachineStore.open(d).close()
  const db = new Database(path.join(d, 'serve.sqlite'))
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  db.close()
})

test('nextState(): the transition table', () => {
  assert.equal(nextState('new', 'boot', false), 'new')
  assert.equal(nextState('new', 'boot', true), 'deploying')
  assert.equal(nextState('new', 'inventory', false), 'enlisted')
  assert.equal(nextState('enlisted', 'assign', true), 'deploying')
  assert.equal(nextState('deploying', 'installed', true), 'installed')
  assert.equal(nextState('installed', 'first-boot', true), 'deployed')
  assert.equal(nextState('deploying', 'failed', true), 'failed')
  assert.equal(nextState('failed', 'redeploy', true), 'deploying')
  assert.equal(nextState('deployed', 'redeploy', true), 'deploying')
  assert.equal(nextState('deployed', 'assign', true), undefined)
  assert.equal(nextState('enlisted', 'redeploy', false), undefined)
  assert.equal(nextState('new', 'first-boot', true), undefined)
  assert.equal(nextState('deployed', 'failed', true), undefined)
})

test('changes made in one turn of the event loop are committed together: another connection sees none before, all after; answers and listeners wait for the WAL fsync after the commit', async () => {
  const s = MachineStore.open(fresh())
  await new Promise<void>((r) => s.afterCommit(() => r()))
  const heard: string[] = []
  s.onChange((mac: string) => {
    heard.push(mac)
  })
  s.syncConfigured([configured('default')])
  s.boot(MAC, 'ignore', 'test')
  s.recordProgress(MAC, { stage: 'write', done: 1 })
  const db = new Database(s.file, { readonly: true })
  const count = () => (db.prepare('SELECT COUNT(*) AS n FROM events WHERE mac = ?').get(MAC) as { n: number }).n
  assert.equal(count(), 0, 'nothing committed yet')
  assert.equal(heard.length, 0, 'no listener before the commit')
  let committed: boolean | undefined
  s.afterCommit((ok) => (committed = ok))
  assert.equal(committed, undefined, 'the answer waits for the commit')
  await new Promise<void>((r) => setImmediate(r))
  // The turn's end has committed the batch; its WAL fsync runs on the thread pool.
  assert.ok(count() >= 3, `configured, boot, state, stage: ${count()}`)
  assert.equal(committed, undefined, 'the answer waits for the fsync of the WAL')
  assert.equal(heard.length, 0, 'and so do the listeners')
  // A read answered now waits for the changes before it to be on disk too.
  const read = new Promise<boolean>((r) => s.afterCommit(r))
  assert.equal(await read, true)
  assert.equal(committed, true)
  assert.ok(heard.includes(MAC))
  // Nothing open: afterCommit calls back at once.
  let now = false
  s.afterCommit(() => (now = true))
  assert.equal(now, true)
  db.close()
  s.close()
})

test('close() while the WAL fsync is in flight syncs and releases every waiter at once; the change is there when opened again', async () => {
  const d = fresh()
  let s = MachineStore.open(d)
  s.syncConfigured([configured('default')])
  const calls: Array<[string, boolean]> = []
  s.afterCommit((ok) => calls.push(['first', ok]))
  await new Promise<void>((r) => setImmediate(r))
  assert.equal(calls.length, 0, 'committed, its fsync not returned yet')
  s.recordEvent(MAC, 'note', { n: 1 })
  s.afterCommit((ok) => calls.push(['second', ok]))
  s.close()
  assert.deepEqual(calls, [
    ['first', true],
    ['second', true],
  ])
  // The fsync that was in flight returns after close: it calls no one again.
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(calls.length, 2)
  s = MachineStore.open(d)
  assert.equal(s.events(MAC).filter((e) => e.kind === 'note').length, 1)
  s.close()
})

test('applyOnce(): a key is applied once, also after the database is closed and opened again; a failed apply leaves no key', async () => {
  const d = fresh()
  let s = MachineStore.open(d)
  s.syncConfigured([configured('default')])
  s.boot(MAC, 'ignore', 'test')
  const r1 = s.applyOnce(MAC, 'run:1', 'events', () => s.recordEvent(MAC, 'note', { n: 1 }))
  assert.equal(r1.replayed, false)
  s.close()
  s = MachineStore.open(d)
  assert.equal(s.applyOnce(MAC, 'run:1', 'events', () => s.recordEvent(MAC, 'note', { n: 1 })).replayed, true)
  // A conflict inside apply rolls the key back with the change: a retry is tried again, not replayed.
  assert.throws(() => s.applyOnce(MAC, 'run:2', 'report', () => s.recordFirstBoot(MAC, {})), StateConflictError)
  assert.throws(() => s.applyOnce(MAC, 'run:2', 'report', () => s.recordFirstBoot(MAC, {})), StateConflictError)
  assert.equal(s.events(MAC).filter((e) => e.kind === 'note').length, 1)
  // Old keys are pruned; forgetting the machine drops its keys.
  assert.equal(s.pruneRequestKeys(Date.now()), 0)
  assert.equal(s.pruneRequestKeys(Date.now() + 25 * 3600_000), 1)
  assert.equal(s.applyOnce(MAC, 'run:1', 'events', () => s.recordEvent(MAC, 'note', { n: 1 })).replayed, false)
  s.remove(MAC)
  // Another connection sees the change once its batch is committed (at the end of this turn).
  await new Promise<void>((r) => s.afterCommit(() => r()))
  const db = new Database(s.file, { readonly: true })
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM agent_requests').get() as { n: number }).n, 0)
  db.close()
  s.close()
})

test('a version 1 database is brought to version 2 (the request keys table), its machines and events kept', () => {
  const d = fresh()
  const s = MachineStore.open(d)
  s.syncConfigured([configured('default')])
  const file = s.file
  s.close()
  const db = new Database(file)
  db.exec('DROP TABLE agent_requests; UPDATE schema_version SET version = 1')
  db.close()
  const s2 = MachineStore.open(d)
  assert.equal(s2.get(MAC)?.name, 'node-1')
  assert.equal(s2.events(MAC)[0]?.kind, 'configured')
  s2.boot(MAC, 'ignore', 'test')
  assert.equal(s2.applyOnce(MAC, 'k', 'events', () => s2.recordEvent(MAC, 'note', {})).replayed, false)
  assert.equal(s2.applyOnce(MAC, 'k', 'events', () => s2.recordEvent(MAC, 'note', {})).replayed, true)
  s2.close()
  const db2 = new Database(file, { readonly: true })
  assert.equal((db2.prepare('SELECT version FROM schema_version').get() as { version: number }).version, 2)
  db2.close()
})
