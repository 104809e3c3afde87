import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { SEND_CHUNK, sendRange } from './send-range.js'

let dir: string
let file: string
let data: Buffer
/** Larger than loopback's socket buffers can hold (sparse: zeros). */
let big: string

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-send-range-'))
  file = path.join(dir, 'f.bin')
  // Not a multiple of the chunk: the last read is short.
  data = randomBytes(5 * SEND_CHUNK + 12345)
  await fsp.writeFile(file, data)
  big = path.join(dir, 'big.bin')
  await fsp.writeFile(big, '')
  await fsp.truncate(big, 256 * 2 ** 20)
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** A server whose one request is answered by sendRange(start, end); the outcome of that call. */
async function serveOnce(start: number, end: number, signal?: AbortSignal, name = file) {
  let outcome!: Promise<void>
  const fh = await fsp.open(name)
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': end - start + 1 })
    outcome = sendRange(fh.fd, res, start, end, signal)
    outcome.catch(() => res.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
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
  const s = await serveOnce(0, data.length - 1)
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
