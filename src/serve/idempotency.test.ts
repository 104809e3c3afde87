import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { ServeClient } from '../deploy/serve-client.js'
import { loadServeConfig } from './config.js'
import { json, rawRequest, writeConfig } from './serve.fixture.js'
import { startServe, type RunningServe } from './server.js'

let dir: string
let serve: RunningServe
const MACS = ['52:54:00:00:01:01', '52:54:00:00:01:02', '52:54:00:00:01:03', '52:54:00:00:01:04']

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-idem-'))
  const out = path.join(dir, 'out')
  await fsp.mkdir(out)
  await fsp.writeFile(path.join(out, 'fixture.img.zst'), 'not an image: only the API is used here')
  const machines = MACS.map((m, i) => `  ${m}: { name: node-${i + 1}, image: default }\n`).join('')
  const file = await writeConfig(dir, out, `unknown_macs: ignore\nmachines:\n${machines}`)
  serve = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
})
after(async () => {
  await serve.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

/** Boots a configured machine (it is deploying) and returns its token. */
function bootMachine(mac: string): string {
  const d = serve.store.boot(mac, 'ignore', 'test')
  assert.equal(d.action, 'deploy')
  return (d as { token: string }).token
}

const post = (mac: string, token: string, what: string, body: unknown, key?: string) =>
  rawRequest(serve.url, `/api/v1/machines/${mac}/${what}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      ...(key ? { 'idempotency-key': key } : {}),
    },
    body: JSON.stringify(body),
  })

test('a POST sent again with the same Idempotency-Key is answered (Idempotent-Replayed) and makes no second event', async () => {
  const mac = MACS[0]!
  const token = bootMachine(mac)
  const a = await post(mac, token, 'events', { kind: 'note', fields: { n: 1 } }, '"run-a:1"')
  const b = await post(mac, token, 'events', { kind: 'note', fields: { n: 1 } }, '"run-a:1"')
  assert.equal(a.status, 200)
  assert.equal(a.headers['idempotent-replayed'], undefined)
  assert.equal(b.status, 200)
  assert.equal(b.headers['idempotent-replayed'], 'true')
  assert.deepEqual(json(b), { state: 'deploying' })
  // Another key (or none) is another request.
  await post(mac, token, 'events', { kind: 'note', fields: { n: 2 } }, 'run-a:2')
  await post(mac, token, 'events', { kind: 'note', fields: { n: 3 } })
  const notes = serve.store.events(mac).filter((e) => e.kind === 'note')
  assert.deepEqual(
    notes.map((e) => e.fields.n),
    [1, 2, 3],
  )
})

test('a retried "installed" is applied once: one event, one move; another machine may use the same key', async () => {
  const mac = MACS[1]!
  const token = bootMachine(mac)
  const report = { report: { bytes: { written: 1 } } }
  const a = await post(mac, token, 'events', { kind: 'installed', fields: report }, '"k:7"')
  assert.deepEqual(json(a), { state: 'installed' })
  const b = await post(mac, token, 'events', { kind: 'installed', fields: report }, '"k:7"')
  assert.equal(b.status, 200, b.body.toString())
  assert.deepEqual(json(b), { state: 'installed' })
  assert.equal(b.headers['idempotent-replayed'], 'true')
  assert.equal(serve.store.events(mac).filter((e) => e.kind === 'installed').length, 1)
  assert.equal(serve.store.events(mac).filter((e) => e.kind === 'state' && e.fields.to === 'installed').length, 1)
  // Keys are per machine.
  const other = MACS[2]!
  const t2 = bootMachine(other)
  const d = await post(other, t2, 'events', { kind: 'note', fields: {} }, '"k:7"')
  assert.equal(d.headers['idempotent-replayed'], undefined)
  assert.equal(serve.store.events(other).filter((e) => e.kind === 'note').length, 1)
})

test('a bad Idempotency-Key is a 400 naming the header, and nothing is recorded', async () => {
  const mac = MACS[2]!
  const token = bootMachine(mac)
  const before = serve.store.events(mac).length
  for (const key of ['"has space"', 'x'.repeat(129), '"a/b"', '""']) {
    const r = await post(mac, token, 'progress', { stage: 'writing', done: 1 }, key)
    assert.equal(r.status, 400, key)
    assert.match((json(r) as { error: { message: string } }).error.message, /Idempotency-Key/)
  }
  assert.equal(serve.store.events(mac).length, before)
})

test('ServeClient: the answer of a committed POST is lost (the connection cut after serve answered); the retry has the same key and the event is stored once', async () => {
  const mac = MACS[3]!
  const token = bootMachine(mac)
  const target = new URL(serve.url)
  let cut = 0
  const keys: string[] = []
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    let request = ''
    client.on('data', (d: Buffer) => {
      request += d.toString('latin1')
      upstream.write(d)
    })
    upstream.on('data', (d: Buffer) => {
      const key = /\r\nidempotency-key: (\S+)/i.exec(request)?.[1]
      if (key) keys.push(key)
      // The first events POST: serve has committed and answered; the agent never hears it.
      if (cut === 0 && request.includes('/events ')) {
        cut++
        client.destroy()
        upstream.destroy()
        return
      }
      client.write(d)
    })
    const end = () => (client.destroy(), upstream.destroy())
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  try {
    const url = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`
    const client = new ServeClient({ url, mac, token, retryDelayMs: 5 })
    assert.deepEqual(await client.event('installed', { report: null }), { state: 'installed' })
    assert.equal(cut, 1)
    assert.equal(client.retries, 1)
    assert.equal(keys.length, 2)
    assert.equal(keys[0], keys[1], 'the retry carries the same key')
    assert.equal(serve.store.events(mac).filter((e) => e.kind === 'installed').length, 1)
    assert.equal(serve.store.get(mac)!.state, 'installed')
    // The next POST has the next key.
    await client.report({ ok: true })
    assert.notEqual(keys.at(-1), keys[0])
    assert.match(keys.at(-1)!, /^"[0-9a-f-]{36}:2"$/)
  } finally {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => proxy.close(() => r()))
  }
})

test('ServeClient: serve not there at all: the given attempts with backoff, then NETWORK naming the route and the attempts', async () => {
  const idle = net.createServer()
  await new Promise<void>((r) => idle.listen(0, '127.0.0.1', r))
  const port = (idle.address() as net.AddressInfo).port
  await new Promise<void>((r) => idle.close(() => r()))
  const client = new ServeClient({
    url: `http://127.0.0.1:${port}`,
    mac: MACS[0]!,
    token: 't',
    attempts: 3,
    retryDelayMs: 5,
  })
  await assert.rejects(client.event('note', {}), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'NETWORK')
    assert.match(e.message, /POST \/api\/v1\/machines\/52:54:00:00:01:01\/events .*\(3 attempts\)/)
    assert.doesNotMatch(e.message, /Bearer|token/)
    return true
  })
  assert.equal(client.retries, 2)
})
