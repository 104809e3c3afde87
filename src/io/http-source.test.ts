import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { HwimageError } from '../errors.js'
import { fetchText, openHttpSource } from './http-source.js'
import { selfSignedCert } from './tls.fixture.js'

/** A small server with Range and If-Range support; `behave` can cut a response short. */
async function serve(
  files: Record<string, { body: Buffer; etag: string }>,
  behave: (req: http.IncomingMessage, n: number) => { cutAfter?: number } = () => ({}),
  tls?: { key: Buffer; cert: Buffer },
): Promise<{
  url: string
  requests: Array<{ path: string; range?: string; method: string }>
  server: http.Server
  close: () => Promise<void>
}> {
  const requests: Array<{ path: string; range?: string; method: string }> = []
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests.push({ path: req.url!, method: req.method!, ...(req.headers.range ? { range: req.headers.range } : {}) })
    const f = files[req.url!]
    if (!f) {
      res.writeHead(404).end()
      return
    }
    let start = 0
    let end = f.body.length - 1
    let status = 200
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    if (m && (!req.headers['if-range'] || req.headers['if-range'] === f.etag)) {
      start = Number(m[1])
      end = m[2] ? Number(m[2]) : end
      status = 206
    }
    const headers: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      etag: f.etag,
      'content-length': end - start + 1,
    }
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${f.body.length}`
    res.writeHead(status, headers)
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    const { cutAfter } = behave(req, requests.length)
    if (cutAfter !== undefined) {
      res.write(f.body.subarray(start, start + cutAfter), () => res.socket?.destroy())
      return
    }
    res.end(f.body.subarray(start, end + 1))
  }
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    requests,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of chunks) parts.push(c)
  return Buffer.concat(parts)
}

const body = randomBytes(3 << 20)

test('openHttpSource() streams a file, reads its head and any range, and knows its size and name', async () => {
  const s = await serve({ '/img/x.img.zst': { body, etag: '"v1"' } })
  try {
    const src = await openHttpSource(`${s.url}/img/x.img.zst`)
    assert.equal(src.size, body.length)
    assert.equal(src.fileName, 'x.img.zst')
    assert.deepEqual(Buffer.from(await src.head(8)), body.subarray(0, 8))
    assert.deepEqual(Buffer.from(await src.readAt!(1000, 500)), body.subarray(1000, 1500))
    assert.ok((await collect(src.stream())).equals(body))
    assert.equal(src.bytesRead, body.length)
  } finally {
    await s.close()
  }
})

test('a connection dropped mid-stream resumes with a Range request where it stopped', async () => {
  const s = await serve({ '/x': { body, etag: '"v1"' } }, (req) =>
    req.method === 'GET' && !req.headers.range ? { cutAfter: 1 << 20 } : {},
  )
  try {
    const src = await openHttpSource(`${s.url}/x`, { retryDelayMs: 10 })
    assert.ok((await collect(src.stream())).equals(body))
    const gets = s.requests.filter((r) => r.method === 'GET')
    assert.equal(gets.length, 2)
    assert.match(gets[1]!.range!, /^bytes=\d+-$/)
    const resumedAt = Number(/\d+/.exec(gets[1]!.range!)![0])
    assert.ok(resumedAt > 0 && resumedAt <= 1 << 20, `resumed at the cut (byte ${resumedAt}), not from 0`)
  } finally {
    await s.close()
  }
})

test('a server that goes away mid-stream fails with NETWORK after the retries, naming the byte', async () => {
  let s: Awaited<ReturnType<typeof serve>> | undefined
  s = await serve({ '/x': { body, etag: '"v1"' } }, (req) => {
    if (req.method === 'GET') {
      // Stop listening for good, then cut this response.
      s!.server.close()
      return { cutAfter: 100_000 }
    }
    return {}
  })
  try {
    const src = await openHttpSource(`${s.url}/x`, { retries: 2, retryDelayMs: 5 })
    await assert.rejects(
      collect(src.stream()),
      (e: unknown) =>
        e instanceof HwimageError && e.code === 'NETWORK' && /failed 3 times in a row at byte \d+/.test(e.message),
    )
  } finally {
    await s.close()
  }
})

test('a file replaced on the server between two requests is refused, not spliced', async () => {
  const files = { '/x': { body, etag: '"v1"' } }
  const s = await serve(files, (req) => {
    if (req.method === 'GET' && !req.headers.range) {
      files['/x'] = { body: randomBytes(body.length), etag: '"v2"' }
      return { cutAfter: 200_000 }
    }
    return {}
  })
  try {
    const src = await openHttpSource(`${s.url}/x`, { retryDelayMs: 5 })
    await assert.rejects(
      collect(src.stream()),
      (e: unknown) => e instanceof HwimageError && e.code === 'NETWORK' && /cannot resume/.test(e.message),
    )
  } finally {
    await s.close()
  }
})

test('a missing file is NOT_FOUND, and fetchText() can treat it as optional', async () => {
  const s = await serve({ '/SHA256SUMS': { body: Buffer.from('abc  x\n'), etag: '"s"' } })
  try {
    await assert.rejects(
      openHttpSource(`${s.url}/nope`),
      (e: unknown) => e instanceof HwimageError && e.code === 'NOT_FOUND',
    )
    assert.equal(await fetchText(`${s.url}/nope.bmap`, { optional: true }), undefined)
    assert.equal(await fetchText(`${s.url}/SHA256SUMS`), 'abc  x\n')
  } finally {
    await s.close()
  }
})

test('https: a server signed by a CA in HWIMAGE_EXTRA_CA_CERTS is trusted; without it, or with an unreadable file, the download fails', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hwimage-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const { key, cert, file } = selfSignedCert(dir)
  const srv = await serve({ '/SHA256SUMS': { body: Buffer.from('abc  x.img\n'), etag: '"1"' } }, undefined, {
    key,
    cert,
  })
  const saved = process.env.HWIMAGE_EXTRA_CA_CERTS
  t.after(async () => {
    if (saved === undefined) delete process.env.HWIMAGE_EXTRA_CA_CERTS
    else process.env.HWIMAGE_EXTRA_CA_CERTS = saved
    await srv.close()
  })
  const url = `${srv.url}/SHA256SUMS`
  process.env.HWIMAGE_EXTRA_CA_CERTS = file
  assert.equal(await fetchText(url, { retries: 0 }), 'abc  x.img\n')
  let connections = 0
  srv.server.on('connection', () => connections++)

  delete process.env.HWIMAGE_EXTRA_CA_CERTS
  // Not retried: the certificate will not change in a few seconds.
  await assert.rejects(
    fetchText(url, { retries: 3, retryDelayMs: 10_000 }),
    (e: HwimageError) => e.code === 'NETWORK' && /certificate is not trusted \(self[- ]signed/.test(e.message),
  )
  assert.equal(connections, 1, 'one attempt')

  process.env.HWIMAGE_EXTRA_CA_CERTS = path.join(dir, 'missing.pem')
  await assert.rejects(
    fetchText(url, { retries: 0 }),
    (e: HwimageError) =>
      e.code === 'USAGE' && e.message.includes('missing.pem') && e.message.includes('NODE_EXTRA_CA_CERTS'),
  )
})
