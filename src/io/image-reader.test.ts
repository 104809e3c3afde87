import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StreamImageReader } from './image-reader.js'

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
