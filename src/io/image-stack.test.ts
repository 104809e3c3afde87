import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import { InterruptedError } from '../errors.js'
import { run } from '../tools/run.js'
import { openByteSource } from './byte-source.js'
import { openImageStack } from './image-stack.js'

const MiB = 1 << 20
let dir: string
let raw: Buffer
let qcow2: Buffer

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-image-stack-'))
  raw = Buffer.alloc(6 * MiB)
  randomBytes(2 * MiB).copy(raw, MiB)
  const img = path.join(dir, 'x.img')
  await fsp.writeFile(img, raw)
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', img, path.join(dir, 'x.qcow2')])
  qcow2 = await fsp.readFile(path.join(dir, 'x.qcow2'))
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** Our descriptors on files (deleted or not) in `dir`. */
async function descriptorsIn(d: string): Promise<string[]> {
  const found: string[] = []
  for (const fd of await fsp.readdir('/proc/self/fd')) {
    const link = await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')
    if (link.startsWith(`${d}/`)) found.push(link)
  }
  return found
}

test('a qcow2 from stdin is spooled to a file with no name in the temp dir, read correctly, and gone once closed', async () => {
  // A temp dir of this test's own (os.tmpdir() reads TMPDIR), so that only this spool can be in it.
  const tmp = await fsp.mkdtemp(path.join(dir, 'tmp-'))
  const saved = process.env.TMPDIR
  process.env.TMPDIR = tmp
  const seen: string[][] = []
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < qcow2.length; i += 256 * 1024) {
      seen.push(await fsp.readdir(tmp))
      yield qcow2.subarray(i, i + 256 * 1024)
    }
    seen.push(await fsp.readdir(tmp))
  }
  try {
    const source = await openByteSource('-', { stdin: Readable.from(chunks()) })
    const opened = await openImageStack(source, 'qcow2', { hashSource: true })
    try {
      assert.ok(seen.length > 2)
      for (const names of seen) assert.deepEqual(names, [], 'no name in the temp dir while spooling')
      assert.deepEqual(await fsp.readdir(tmp), [])
      assert.equal((await descriptorsIn(tmp)).length, 1, 'the spool is open')
      const dst = new Uint8Array(raw.length)
      assert.equal(await opened.read(0, dst), raw.length)
      assert.ok(Buffer.from(dst).equals(raw))
      await opened.finish()
      assert.equal(await opened.sourceDigest(), createHash('sha256').update(qcow2).digest('hex'))
    } finally {
      await opened.close()
      await source.close()
    }
    assert.deepEqual(await descriptorsIn(tmp), [], 'the spool is closed')
    assert.deepEqual(await fsp.readdir(tmp), [])
  } finally {
    if (saved === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = saved
  }
})

const data = Uint8Array.from({ length: 10000 }, (_, i) => (i * 7) & 0xff)
async function* pieces(sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const s of sizes) {
    yield data.subarray(at, at + s)
    at += s
  }
  yield data.subarray(at)
}

test('the stack serves the head again after head(), and with imageDigest hashes every image byte once, gaps included', async () => {
  const source = await openByteSource('-', { stdin: Readable.from(pieces([777, 5])) })
  const r = await openImageStack(source, 'raw', { hashSource: true, imageDigest: true })
  try {
    const head = await r.head(1024)
    assert.deepEqual(head, data.subarray(0, 1024))
    const x = new Uint8Array(1000)
    assert.equal(await r.read(500, x), 1000) // half from the held head, half from the stream
    assert.deepEqual(x, data.subarray(500, 1500))
    await r.read(8000, new Uint8Array(100)) // a gap the image hash must still hash
    assert.equal(await r.finish(), data.length)
    const sha = createHash('sha256').update(data).digest('hex')
    assert.equal(r.imageDigest(), sha)
    assert.equal(await r.sourceDigest(), sha)
    assert.equal(r.bytesRead(), data.length)
  } finally {
    await r.close()
    await source.close()
  }
})

test('the stack: a read waiting on a stalled source fails with InterruptedError when the signal aborts; close() twice is fine', async () => {
  const stalled = new Readable({ read() {} })
  stalled.push(Buffer.from(data.subarray(0, 100)))
  const source = await openByteSource('-', { stdin: stalled })
  const abort = new AbortController()
  const r = await openImageStack(source, 'raw', { hashSource: true, signal: abort.signal })
  try {
    assert.equal((await r.head(50)).length, 50)
    const pending = r.read(50, new Uint8Array(1000))
    setImmediate(() => abort.abort())
    await assert.rejects(pending, (e: unknown) => e instanceof InterruptedError)
    await assert.rejects(r.finish(), (e: unknown) => e instanceof InterruptedError)
  } finally {
    await r.close()
    await r.close()
    await source.close()
  }
})
