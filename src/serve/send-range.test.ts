import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { selfSignedCert } from '../io/tls.fixture.js'
import { SEND_CHUNK, sendRange, sendRangeStats, FIRST_PIECE } from './send-range.js'
import { sendFileNative } from './send-file-native.js'

let dir: string
let file: string
let data: Buffer
/** Larger than loopback's socket buffers can hold (sparse: zeros). */
let big: string
/** Random, and several times what loopback's socket buffers hold: sendfile meets a full buffer. */
let mid: string
let midData: Buffer

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-send-range-'))
  file = path.join(dir, 'f.bin')
  // Not a multiple of the chunk: the last read is short.
  data = randomBytes(5 * SEND_CHUNK + 12345)
  await fsp.writeFile(file, data)
  big = path.join(dir, 'big.bin')
  await fsp.writeFile(big, '')
  await fsp.truncate(big, 256 * 2 ** 20)
  mid = path.join(dir, 'mid.bin')
  midData = randomBytes(24 * 2 ** 20 + 777)
  await fsp.writeFile(mid, midData)
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** A server whose one request is answered by sendRange(start, end); the outcome of that call. */
async function serveOnce(
  start: number,
  end: number,
  signal?: AbortSignal,
  name = file,
  tls?: { key: Buffer; cert: Buffer },
) {
  let outcome!: Promise<void>
  const fh = await fsp.open(name)
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-length': end - start + 1 })
    outcome = sendRange(fh.fd, res, start, end, signal)
    outcome.catch(() => res.destroy())
  }
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}/`
  return {
    url,
    outcome: () => outcome,
    close: async () => {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await fh.close()
    },
  }
}

test('sendRange() sends exactly the bytes of the range, across several chunks and a short last one', async () => {
  for (const [start, end] of [
    [0, data.length - 1],
    [SEND_CHUNK - 1, 3 * SEND_CHUNK + 7],
    [100, 100],
  ] as const) {
    const s = await serveOnce(start, end)
    try {
      const body = Buffer.from(await (await fetch(s.url)).arrayBuffer())
      assert.ok(body.equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`)
      await s.outcome()
    } finally {
      await s.close()
    }
  }
})

test('sendRange() rejects when the file is shorter than the range', async () => {
  const s = await serveOnce(data.length - 10, data.length + 10)
  try {
    await fetch(s.url)
      .then((r) => r.arrayBuffer())
      .catch(() => undefined)
    await assert.rejects(s.outcome(), /the file ended at byte/)
  } finally {
    await s.close()
  }
})

test('sendRange() rejects, and does not hang, when the client goes away mid-download', async () => {
  // Larger than the socket buffers: a small file would be in the kernel before the client reads.
  const s = await serveOnce(0, 256 * 2 ** 20 - 1, undefined, big)
  try {
    await new Promise<void>((resolve) => {
      const req = http.get(s.url, (res) => {
        // Read a little, then drop the connection with most of the file unsent.
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })
    await assert.rejects(s.outcome(), /closed/)
  } finally {
    await s.close()
  }
})

test('sendRange() stops and destroys the response when its signal aborts while the client reads nothing', async () => {
  const ctrl = new AbortController()
  const s = await serveOnce(0, 256 * 2 ** 20 - 1, ctrl.signal, big)
  try {
    let req!: http.ClientRequest
    await new Promise<void>((resolve) => {
      req = http.get(s.url, (res) => {
        // A client that never reads: the server's writes stop calling back.
        res.pause()
        res.on('error', () => {})
        setTimeout(() => ctrl.abort(new Error('idle timeout')), 200)
        resolve()
      })
      req.on('error', () => {})
    })
    await assert.rejects(s.outcome(), /idle timeout/)
    req.destroy()
  } finally {
    await s.close()
  }
})

/** GETs `url` with node:http, reading slowly at first (the server meets a full socket buffer), into one Buffer. */
function slowGet(url: string, agent?: http.Agent): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const parts: Buffer[] = []
      res.pause()
      setTimeout(() => res.resume(), 100)
      res.on('data', (b: Buffer) => parts.push(b))
      res.on('end', () => resolve(Buffer.concat(parts)))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

test('sendRange() sends the body with sendfile(2) when the addon is built, waiting on a full socket on the event loop, and the connection stays usable', async (t) => {
  if (!sendFileNative()) return t.skip('the sendfile addon is not built (make setup) or HWIMAGE_SERVE_SENDFILE=0')
  const [start, end] = [12345, midData.length - 99]
  const fh = await fsp.open(mid)
  const outcomes: Promise<void>[] = []
  const server = http.createServer((_req, res) => {
    res.writeHead(206, { 'content-length': end - start + 1 })
    const o = sendRange(fh.fd, res, start, end)
    outcomes.push(o)
    o.catch(() => res.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const before = { ...sendRangeStats }
    const first = await slowGet(url, agent)
    assert.ok(first.equals(midData.subarray(start, end + 1)), 'the first body')
    const sent = sendRangeStats.sendfileBytes - before.sendfileBytes
    const copied = sendRangeStats.copiedBytes - before.copiedBytes
    assert.equal(sent + copied, end - start + 1)
    // Only the first piece went through Node; the socket filled up (the client paused) and
    // the rest went by sendfile after waits for writability.
    assert.equal(copied, FIRST_PIECE)
    assert.equal(sent, end - start + 1 - FIRST_PIECE)
    assert.ok(sendRangeStats.writableWaits > before.writableWaits, 'waited for a full socket at least once')
    // The same connection (keep-alive) answers a second request framed right after the first.
    const second = await slowGet(url, agent)
    assert.ok(second.equals(midData.subarray(start, end + 1)), 'the second body')
    await Promise.all(outcomes)
    assert.equal(outcomes.length, 2)
  } finally {
    agent.destroy()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    await fh.close()
  }
})

test('sendRange() on the sendfile path keeps a slow but steady reader alive under the idle timeout, which counts only Node writes', async (t) => {
  if (!sendFileNative()) return t.skip('the sendfile addon is not built (make setup) or HWIMAGE_SERVE_SENDFILE=0')
  const IDLE_MS = 1500
  const RATE = 4 * 2 ** 20 // bytes per second: 24 MiB take ~6 s, four idle timeouts
  const fh = await fsp.open(mid)
  let outcome!: Promise<void>
  const server = http.createServer((_req, res) => {
    res.setTimeout(IDLE_MS, () => res.destroy())
    res.writeHead(200, { 'content-length': midData.length })
    outcome = sendRange(fh.fd, res, 0, midData.length - 1)
    outcome.catch(() => res.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  try {
    const began = Date.now()
    const body = await new Promise<Buffer>((resolve, reject) => {
      http
        .get(url, (res) => {
          const parts: Buffer[] = []
          let got = 0
          res.on('data', (b: Buffer) => {
            parts.push(b)
            got += b.length
            // Ahead of the rate: wait until the rate catches up.
            const ahead = got / RATE - (Date.now() - began) / 1000
            if (ahead > 0) {
              res.pause()
              setTimeout(() => res.resume(), ahead * 1000)
            }
          })
          res.on('end', () => resolve(Buffer.concat(parts)))
          res.on('error', reject)
          res.on('aborted', () => reject(new Error('the server dropped the connection')))
        })
        .on('error', reject)
    })
    assert.ok(Date.now() - began > 2 * IDLE_MS, 'the body took longer than the idle timeout')
    assert.ok(body.equals(midData), 'the whole body')
    await outcome
  } finally {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    await fh.close()
  }
})

test('sendRange() falls back to copying through TLS, where the socket has no fd to send to', async () => {
  const certDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-send-range-tls-'))
  const { key, cert } = selfSignedCert(certDir)
  const [start, end] = [SEND_CHUNK + 1, 3 * SEND_CHUNK + 5]
  const s = await serveOnce(start, end, undefined, file, { key, cert })
  try {
    const before = { ...sendRangeStats }
    const body = await new Promise<Buffer>((resolve, reject) => {
      https
        .get(s.url, { rejectUnauthorized: false }, (res) => {
          const parts: Buffer[] = []
          res.on('data', (b: Buffer) => parts.push(b))
          res.on('end', () => resolve(Buffer.concat(parts)))
        })
        .on('error', reject)
    })
    assert.ok(body.equals(data.subarray(start, end + 1)))
    await s.outcome()
    assert.equal(sendRangeStats.sendfileBytes, before.sendfileBytes)
    assert.equal(sendRangeStats.copiedBytes - before.copiedBytes, end - start + 1)
  } finally {
    await s.close()
    await fsp.rm(certDir, { recursive: true, force: true })
  }
})
