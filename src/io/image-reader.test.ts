import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { HashingReader } from './hashing-reader.js'
import { StreamImageReader } from './image-reader.js'
import { PrefixedReader } from './prefixed-reader.js'

const data = Uint8Array.from({ length: 10000 }, (_, i) => (i * 7) & 0xff)
async function* chunks(sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const s of sizes) {
    yield data.subarray(at, at + s)
    at += s
  }
  yield data.subarray(at)
}

test('StreamImageReader serves forward reads across chunk edges and skips what is not asked for', async () => {
  const r = new StreamImageReader(chunks([3, 1000, 1, 4000]))
  const a = new Uint8Array(10)
  assert.equal(await r.read(0, a), 10)
  assert.deepEqual(a, data.subarray(0, 10))
  const b = new Uint8Array(2000)
  assert.equal(await r.read(1500, b), 2000)
  assert.deepEqual(b, data.subarray(1500, 3500))
  const c = new Uint8Array(100)
  assert.equal(await r.read(9950, c), 50)
  assert.equal(await r.finish(), 10000)
})

test('StreamImageReader refuses to go backwards, and finish() runs the end check', async () => {
  let ended = 0
  const r = new StreamImageReader(chunks([100]), undefined, async () => {
    ended++
  })
  await r.read(200, new Uint8Array(10))
  await assert.rejects(r.read(0, new Uint8Array(10)), /already at byte/)
  assert.equal(await r.finish(), 10000)
  assert.equal(ended, 1)
})

test('PrefixedReader serves the first bytes again, and HashingReader hashes every byte once, gaps included', async () => {
  const hashing = new HashingReader(new StreamImageReader(chunks([777, 5])))
  const head = new Uint8Array(1024)
  await hashing.read(0, head)
  const r = new PrefixedReader(hashing, head)
  const x = new Uint8Array(1000)
  assert.equal(await r.read(500, x), 1000) // half from the prefix, half from the stream
  assert.deepEqual(x, data.subarray(500, 1500))
  await r.read(8000, new Uint8Array(100)) // a gap the hasher must still hash
  await r.finish()
  assert.equal(hashing.digest, createHash('sha256').update(data).digest('hex'))
})
