import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { makeFixtureImage } from '../install/image.fixture.js'
import { loadServeConfig } from './config.js'
import { sseMessage } from './event-stream.js'
import { rawRequest, writeConfig } from './serve.fixture.js'
import { startServe, type RunningServe } from './server.js'

const OPERATOR = 'op-token-for-the-stream-0123456789'
const MAC = '52:54:00:5e:00:01'
let dir: string
let imageDir: string
let serve: RunningServe
const logs: Array<Record<string, unknown>> = []

before(async () => {
  // The state on tmpfs where there is one: the slow-reader test commits hundreds of transactions.
  const base = (await fsp.stat('/dev/shm').catch(() => undefined))?.isDirectory() ? '/dev/shm' : os.tmpdir()
  dir = await fsp.mkdtemp(path.join(base, 'hwimage-stream-'))
  // The image where filefrag works (its bmap needs FIEMAP, which tmpfs lacks).
  imageDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-stream-image-'))
  await makeFixtureImage(imageDir, { formats: ['zst'] })
  const file = await writeConfig(dir, imageDir, `operator_token: ${OPERATOR}\nunknown_macs: enlist\n`)
  serve = await startServe(await loadServeConfig(file), {
    port: 0,
    host: '127.0.0.1',
    log: (r) => logs.push(r),
    stream: { heartbeatMs: 200 },
  })
})
after(async () => {
  await serve?.close()
  await fsp.rm(dir, { recursive: true, force: true })
  await fsp.rm(imageDir, { recursive: true, force: true })
})

interface Message {
  event: string
  id?: string
  data: unknown
}

/** An EventSource-like reader of text/event-stream over node:http. */
function openStream(
  url: string,
  p: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number
  headers: http.IncomingHttpHeaders
  messages: Message[]
  comments: number
  ended: Promise<void>
  next(pred: (m: Message) => boolean, ms?: number): Promise<Message>
  close(): void
}> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path: p, headers, agent: false }, (res) => {
      const messages: Message[] = []
      const waiters: Array<() => void> = []
      let buf = ''
      const state = { comments: 0 }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buf += chunk
        let end: number
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end)
          buf = buf.slice(end + 2)
          const m: Partial<Message> & { data?: unknown } = {}
          let data: string | undefined
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) state.comments++
            else if (line.startsWith('event: ')) m.event = line.slice(7)
            else if (line.startsWith('id: ')) m.id = line.slice(4)
            else if (line.startsWith('data: ')) data = (data === undefined ? '' : data + '\n') + line.slice(6)
          }
          if (data !== undefined) messages.push({ event: m.event ?? 'message', id: m.id, data: JSON.parse(data) })
          for (const w of waiters.splice(0)) w()
        }
      })
      const ended = new Promise<void>((r) => res.on('close', () => r()))
      resolve({
        status: res.statusCode!,
        headers: res.headers,
        messages,
        get comments() {
          return state.comments
        },
        ended,
        next(pred, ms = 5000) {
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error(`no such message in ${ms} ms`)), ms)
            const check = () => {
              const found = messages.find(pred)
              if (found) {
                clearTimeout(timer)
                ok(found)
              } else waiters.push(check)
            }
            check()
          })
        },
        close: () => req.destroy(),
      })
    })
    req.on('error', reject)
  })
}

const auth = { authorization: `Bearer ${OPERATOR}` }
const operatorPost = (p: string, body: unknown) =>
  rawRequest(serve.url, p, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

async function enlist(mac: string): Promise<string> {
  const r = await rawRequest(serve.url, '/api/v1/enlist', { method: 'POST', body: JSON.stringify({ mac }) })
  assert.equal(r.status, 200, r.body.toString())
  return (JSON.parse(r.body.toString()) as { token: string }).token
}

test('sseMessage() frames one event: event, id, the JSON on one data line (line breaks escaped), a blank line', () => {
  assert.equal(
    sseMessage({ event: 'event', id: 7, data: { message: 'two\nlines\r' } }),
    'event: event\nid: 7\ndata: {"message":"two\\nlines\\r"}\n\n',
  )
  assert.equal(sseMessage({ event: 'hello', data: { lastEventId: 0 } }), 'event: hello\ndata: {"lastEventId":0}\n\n')
})

test('GET /api/v1/stream: 401 without the operator token, 403 with a wrong one, in a header or as ?access_token=', async () => {
  assert.equal((await rawRequest(serve.url, '/api/v1/stream')).status, 401)
  assert.equal((await rawRequest(serve.url, '/api/v1/stream?access_token=wrong-wrong-wrong-wrong')).status, 403)
  assert.equal(
    (await rawRequest(serve.url, '/api/v1/stream', { headers: { authorization: 'Bearer wrong-wrong-wrong' } })).status,
    403,
  )
  // The query parameter is the stream's alone: the rest of the operator API wants the header.
  assert.equal((await rawRequest(serve.url, `/api/v1/machines?access_token=${OPERATOR}`)).status, 401)
  assert.equal((await rawRequest(serve.url, '/api/v1/stream', { method: 'POST' })).status, 405)
})

test('the stream says hello, then a machine and its events as an agent enlists and sends its inventory; no token in the stream or the log', async () => {
  const s = await openStream(serve.url, `/api/v1/stream?access_token=${encodeURIComponent(OPERATOR)}`)
  try {
    assert.equal(s.status, 200)
    assert.match(String(s.headers['content-type']), /^text\/event-stream/)
    assert.equal(s.headers['cache-control'], 'no-store')
    const hello = await s.next((m) => m.event === 'hello')
    const from = (hello.data as { lastEventId: number }).lastEventId
    const token = await enlist(MAC)
    const machine = await s.next((m) => m.event === 'machine' && (m.data as { mac: string }).mac === MAC)
    assert.equal((machine.data as { machine: { state: string } }).machine.state, 'new')
    const enlisting = await s.next((m) => m.event === 'event' && (m.data as { kind: string }).kind === 'enlisting')
    assert.ok(Number(enlisting.id) > from, 'events carry their database id')
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const inv = { version: 1, firmware: 'uefi', cpus: 1, memoryBytes: 1, pci: [], disks: [], nics: [] }
    await rawRequest(serve.url, `/api/v1/machines/${MAC}/inventory`, {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify(inv),
    })
    const enlisted = await s.next(
      (m) => m.event === 'machine' && (m.data as { machine: { state: string } }).machine.state === 'enlisted',
    )
    const data = enlisted.data as { machine: Record<string, unknown>; phases: { at: Record<string, string> } }
    assert.ok(!('inventory' in data.machine), 'the stream sends the summary; the page asks the API for the rest')
    assert.ok(data.phases.at.deployEnvironmentUp, 'with the phases of the deploy')
    assert.ok(
      s.messages.every((m) => !JSON.stringify(m.data).includes(token)),
      'no machine token in the stream',
    )
    // Heartbeats keep a quiet stream open.
    const comments = s.comments
    await new Promise((r) => setTimeout(r, 500))
    assert.ok(s.comments > comments, 'keep-alive comments arrive')
    const ids = s.messages.filter((m) => m.event === 'event').map((m) => Number(m.id))
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'events in order',
    )
    assert.equal(new Set(ids).size, ids.length, 'no event twice')
  } finally {
    s.close()
  }
  await new Promise((r) => setTimeout(r, 50))
  const text = JSON.stringify(logs)
  assert.ok(!text.includes(OPERATOR), 'the operator token is not in the log')
  const record = logs.find((l) => l.event === 'request' && l.path === '/api/v1/stream?access_token=[redacted]')
  assert.ok(record, 'the stream is logged with the token redacted')
  assert.equal(record.remote, '127.0.0.1', 'and the address it came from, read before the socket closed')
})

test('a reconnect with Last-Event-ID gets the events it missed, once', async () => {
  const first = await openStream(serve.url, '/api/v1/stream', auth)
  await first.next((m) => m.event === 'hello')
  const last = serve.store.lastEventId()
  first.close()
  await operatorPost(`/api/v1/machines/${MAC}/assign`, { image: 'default' })
  await operatorPost(`/api/v1/machines/${MAC}/assign`, { image: 'default', name: 'renamed' })
  const again = await openStream(serve.url, '/api/v1/stream', { ...auth, 'last-event-id': String(last) })
  try {
    await again.next((m) => m.event === 'event' && Number(m.id) === serve.store.lastEventId())
    const replayed = again.messages.filter((m) => m.event === 'event').map((m) => Number(m.id))
    assert.equal(replayed[0], last + 1)
    assert.deepEqual(
      replayed,
      serve.store.eventsAfter(last).map((e) => e.id),
    )
  } finally {
    again.close()
  }
})

test('a client that does not read holds one message in serve, not every change: it is sent the latest state and every event once it reads', async () => {
  const mac = '52:54:00:5e:00:02'
  const token = await enlist(mac)
  const sock = net.connect(serve.port, '127.0.0.1')
  await new Promise((r) => sock.once('connect', r))
  sock.write(`GET /api/v1/stream HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${OPERATOR}\r\n\r\n`)
  // Read the headers and hello, then stop reading: the kernel's buffers fill, then serve's.
  let got = ''
  await new Promise<void>((r) => {
    const on = (b: Buffer) => {
      got += b.toString('latin1')
      if (got.includes('event: hello')) {
        sock.off('data', on)
        r()
      }
    }
    sock.on('data', on)
  })
  sock.pause()
  const from = serve.store.lastEventId()
  const logTail = 'x'.repeat(300_000)
  const rounds = 24
  for (let i = 0; i < rounds; i++)
    serve.store.recordEvent(mac, 'failed', { code: 'TEST', message: `round ${i}`, logTail })
  // 24 × (a 300 kB machine + a 300 kB event) = 14 MB wanted; serve holds about one message.
  await new Promise((r) => setTimeout(r, 300))
  const [st] = serve.stream.stats().filter((c) => c.blocked)
  assert.ok(st, 'the stream waits for its socket to drain')
  assert.ok(st.bufferedBytes < 1024 * 1024, `serve buffers ${st.bufferedBytes} bytes for it`)
  assert.ok(st.dirty <= 1, 'changes of one machine are one entry')
  // Now read everything: the last state, and every event exactly once, in order.
  let text = got
  const wantLast = serve.store.lastEventId()
  sock.on('data', (b: Buffer) => (text += b.toString('latin1')))
  sock.resume()
  const deadline = Date.now() + 15_000
  while (!text.includes(`id: ${wantLast}\n`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  sock.destroy()
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])).filter((id) => id > from)
  assert.deepEqual(
    ids,
    serve.store.eventsAfter(from, 10_000).map((e) => e.id),
    'every event, once, in order',
  )
  const states = [...text.matchAll(/"error":\{"code":"TEST","message":"round (\d+)"/g)].map((m) => Number(m[1]))
  assert.equal(states.at(-1), rounds - 1, 'the latest state arrived')
  assert.ok(states.length < rounds, `the machine's ${rounds} changes came as ${states.length} messages`)
  void token
})

test('a client whose buffer passes the limit is dropped; serve stopping ends every stream', async () => {
  const sub = path.join(dir, 'small')
  await fsp.mkdir(sub)
  const file = await writeConfig(sub, imageDir, 'unknown_macs: enlist\n')
  const s = await startServe(await loadServeConfig(file), {
    port: 0,
    host: '127.0.0.1',
    stream: { maxBufferedBytes: 100_000 },
  })
  const mac = '52:54:00:5e:00:03'
  let stopped = false
  try {
    const a = await openStream(s.url, '/api/v1/stream')
    await a.next((m) => m.event === 'hello')
    assert.equal(s.stream.size, 1, 'loopback without operator_token is allowed')
    await rawRequest(s.url, '/api/v1/enlist', { method: 'POST', body: JSON.stringify({ mac }) })
    s.store.recordEvent(mac, 'failed', { code: 'TEST', message: 'big', logTail: 'y'.repeat(200_000) })
    await a.ended
    assert.equal(s.stream.size, 0, 'dropped: one message is over its limit')
    const b = await openStream(s.url, '/api/v1/stream')
    await b.next((m) => m.event === 'hello')
    const c = await openStream(s.url, '/api/v1/stream')
    await c.next((m) => m.event === 'hello')
    assert.equal(s.stream.size, 2)
    const t = Date.now()
    await s.close()
    stopped = true
    await Promise.all([b.ended, c.ended])
    assert.ok(Date.now() - t < 2000, 'close() does not wait for the streams to time out')
  } finally {
    if (!stopped) await s.close()
  }
})
