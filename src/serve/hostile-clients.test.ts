// Slow and hostile clients against a real serve on real sockets: none of them holds up
// the others or grows serve's memory. (Path traversal on every file route, a stalled API
// body and the 1 MiB body limit are in server.test.ts.)

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { loadServeConfig } from './config.js'
import { rawRequest, writeConfig } from './serve.fixture.js'
import { startServe, type RunningServe } from './server.js'

const MiB = 1 << 20
const BLOB = 256 * MiB
const HEADERS_MS = 2000
const STREAM_IDLE_MS = 1000
let dir: string
let serve: RunningServe
const logs: Array<Record<string, unknown>> = []

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-hostile-'))
  const out = path.join(dir, 'out')
  await fsp.mkdir(out)
  // A large "image" (sparse: reading it costs no disk) that a stalled reader would pile up in memory.
  await fsp.writeFile(path.join(out, 'blob.img.zst'), '')
  await fsp.truncate(path.join(out, 'blob.img.zst'), BLOB)
  await fsp.writeFile(path.join(out, 'SHA256SUMS'), 'not checked here  blob.img.zst\n')
  const file = await writeConfig(dir, out, 'unknown_macs: ignore\n')
  serve = await startServe(await loadServeConfig(file), {
    port: 0,
    host: '127.0.0.1',
    log: (r) => logs.push(r),
    timeouts: { headersMs: HEADERS_MS, streamIdleMs: STREAM_IDLE_MS },
  })
})
after(async () => {
  await serve.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

/** A raw connection: the start of what it received, how many bytes, and when it closed. */
function connection(write: (s: net.Socket) => void): {
  sock: net.Socket
  got: () => string
  bytes: () => number
  closed: Promise<number>
} {
  let got = ''
  let bytes = 0
  const started = Date.now()
  const sock = net.connect(serve.port, '127.0.0.1', () => write(sock))
  sock.on('data', (b: Buffer) => {
    bytes += b.length
    if (got.length < 4096) got += b.toString('latin1')
  })
  const closed = new Promise<number>((resolve) => {
    sock.on('close', () => resolve(Date.now() - started))
    sock.on('error', () => undefined)
  })
  return { sock, got: () => got, bytes: () => bytes, closed }
}

/** GET of a whole file, its SHA-256 and length. */
function download(p: string): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: serve.port, path: p, agent: false }, (res) => {
        const h = createHash('sha256')
        let bytes = 0
        res.on('data', (c: Buffer) => {
          bytes += c.length
          h.update(c)
        })
        res.on('end', () => resolve({ status: res.statusCode!, bytes, sha256: h.digest('hex') }))
        res.on('error', reject)
      })
      .on('error', reject)
  })
}

test('slowloris: 100 connections sending their headers a line at a time do not hold up other requests; each is answered 408 and closed at the headers timeout', async () => {
  const slow = Array.from({ length: 100 }, () =>
    connection((s) => {
      s.write('GET /images/default/SHA256SUMS HTTP/1.1\r\nhost: x\r\n')
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write('x-slow: 1\r\n')), 100)
      s.on('close', () => clearInterval(t))
    }),
  )
  let closedEarly = 0
  for (const c of slow) void c.closed.then(() => closedEarly++)
  // Others are answered while every slow connection is still open.
  for (let i = 0; i < 10; i++) {
    const r = await rawRequest(serve.url, '/images/default/SHA256SUMS')
    assert.equal(r.status, 200)
  }
  assert.equal(closedEarly, 0, 'the other requests were answered before any slow connection was dropped')
  const took = await Promise.all(slow.map((c) => c.closed))
  for (const [i, ms] of took.entries()) {
    assert.ok(ms >= HEADERS_MS - 100 && ms < HEADERS_MS + 3000, `slow connection ${i} closed after ${ms} ms`)
    assert.match(slow[i]!.got(), /^HTTP\/1\.1 408 /)
  }
})

test('32 clients that never read a 256 MiB download: serve holds a few MiB for each (not the file), another client downloads it whole meanwhile, and the stalled ones are dropped at the idle timeout', async (t) => {
  const p = '/images/default/blob.img.zst'
  const rss0 = process.memoryUsage().rss
  let peak = rss0
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50)
  const dropped = () => logs.filter((l) => l.event === 'request' && l.path === p && l.aborted === true)
  const stalled = Array.from({ length: 32 }, () =>
    connection((s) => {
      s.write(`GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`)
      // Never read: the kernel's buffers fill, then serve's writes stop draining.
      s.pause()
    }),
  )
  try {
    const whole = await download(p)
    assert.equal(whole.status, 200)
    assert.equal(whole.bytes, BLOB)
    const zeros = createHash('sha256')
    const mib = Buffer.alloc(MiB)
    for (let i = 0; i < BLOB / MiB; i++) zeros.update(mib)
    assert.equal(whole.sha256, zeros.digest('hex'))
    // serve drops each stalled stream after STREAM_IDLE_MS without progress (its log says aborted).
    const until = Date.now() + STREAM_IDLE_MS + 10_000
    while (dropped().length < 32 && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    assert.equal(dropped().length, 32, 'every stalled reader was dropped')
    for (const l of dropped()) assert.ok((l.ms as number) >= STREAM_IDLE_MS - 100, `dropped after ${l.ms} ms`)
  } finally {
    clearInterval(sampler)
  }
  // A paused socket sees the close only once it reads what the kernel holds: a part of the file.
  for (const c of stalled) c.sock.resume()
  await Promise.all(stalled.map((c) => c.closed))
  for (const c of stalled) assert.ok(c.bytes() < BLOB / 4, `a stalled reader got ${c.bytes()} bytes`)
  // Unbounded, 32 × 256 MiB = 8 GiB would pile up; bounded, about 2 MiB per reader.
  const grew = (peak - rss0) / MiB
  t.diagnostic(`the process grew by ${grew.toFixed(0)} MiB at most while 32 readers stalled on 256 MiB`)
  assert.ok(grew < 256, `serve's process grew by ${grew.toFixed(0)} MiB with 32 stalled readers`)
  assert.equal((await rawRequest(serve.url, '/images/default/SHA256SUMS')).status, 200)
})

test('garbage: not HTTP, a header over 16 KiB, bad JSON, a huge chunked body, a huge Content-Length: each refused with its status, and serve answers the next request', async () => {
  const notHttp = connection((s) => s.write('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n'))
  await notHttp.closed
  assert.match(notHttp.got(), /^HTTP\/1\.1 400 /)

  const bigHeader = await rawRequest(serve.url, '/images/default/SHA256SUMS', {
    headers: { 'x-big': 'a'.repeat(20_000) },
  })
  assert.equal(bigHeader.status, 431)

  const badJson = await rawRequest(serve.url, '/api/v1/enlist', { method: 'POST', body: '{"mac":' })
  // unknown_macs: ignore answers 404 before reading; the body parser is exercised on an operator route.
  assert.equal(badJson.status, 404)
  const assign = await rawRequest(serve.url, '/api/v1/machines/52:54:00:00:00:09/assign', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"image": "default",',
  })
  assert.equal(assign.status, 400)
  assert.match(assign.body.toString(), /not JSON/)

  // 2 MiB chunked (no Content-Length): cut at 1 MiB with a 413, the connection closed.
  const chunked = connection((s) => {
    s.write('POST /api/v1/machines/52:54:00:00:00:09/assign HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n')
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    for (let i = 0; i < 32 && !s.destroyed; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
  })
  await chunked.closed
  assert.match(chunked.got(), /^HTTP\/1\.1 413 /)

  const huge = connection((s) =>
    s.write(
      'POST /api/v1/machines/52:54:00:00:00:09/assign HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000000\r\n\r\n{',
    ),
  )
  await huge.closed
  assert.match(huge.got(), /^HTTP\/1\.1 413 /)
  assert.match(huge.got(), /connection: close/i)

  assert.equal((await rawRequest(serve.url, '/images/default/SHA256SUMS')).status, 200)
})

test('bad Range headers: a malformed or multi-range header gets the whole file (200), an impossible one 416 with the size, never a 5xx', async () => {
  const p = '/images/default/SHA256SUMS'
  const size = (await fsp.stat(path.join(dir, 'out', 'SHA256SUMS'))).size
  const cases: Array<[string, number]> = [
    ['bytes=abc', 200],
    ['bytes=0-1,5-6', 200],
    ['items=0-1', 200],
    ['bytes=--1', 200],
    ['bytes=10-5', 416],
    ['bytes=99999999999999999999-', 416],
    [`bytes=${size}-`, 416],
    ['bytes=-0', 416],
    ['bytes=-99999999999999999999', 206],
    ['bytes=0-99999999999999999999', 206],
  ]
  for (const [range, status] of cases) {
    const r = await rawRequest(serve.url, p, { headers: { range } })
    assert.equal(r.status, status, range)
    if (status === 416) assert.equal(r.headers['content-range'], `bytes */${size}`, range)
    if (status === 206) assert.equal(r.headers['content-range'], `bytes 0-${size - 1}/${size}`, range)
    if (status === 200) assert.equal(r.body.length, size, range)
  }
})
