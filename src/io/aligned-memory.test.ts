import assert from 'node:assert/strict'
import { promises as fsp, constants } from 'node:fs'
import { test } from 'node:test'
import { alignedBytes, isAligned, SlotPool } from './aligned-memory.js'

test('alignedBytes() gives zeroed memory that an O_DIRECT write accepts', async () => {
  const b = alignedBytes(8192)
  assert.equal(b.length, 8192)
  assert.ok(b.every((x) => x === 0))
  assert.ok(isAligned(b) && isAligned(b.subarray(4096)) && !isAligned(b.subarray(512)))
  assert.ok(!isAligned(new Uint8Array(4096)))
  // /var/tmp is a disk file system here (tmpfs refuses O_DIRECT altogether).
  const file = `/var/tmp/hwimage-aligned-${process.pid}`
  const fh = await fsp.open(file, constants.O_CREAT | constants.O_RDWR | constants.O_DIRECT).catch(() => undefined)
  try {
    if (fh) {
      b.fill(7)
      const { bytesWritten } = await fh.write(b, 0, 4096, 0)
      assert.equal(bytesWritten, 4096)
      // 16 bytes past an aligned address: misaligned for any logical block size (a plain
      // Buffer.alloc()'s address + 16 lands on a 512-byte boundary one time in 32).
      await assert.rejects(fh.write(alignedBytes(8192).subarray(16, 16 + 4096), 0, 4096, 4096), /EINVAL/)
    }
  } finally {
    await fh?.close()
    await fsp.rm(file, { force: true })
  }
})

test('SlotPool hands out distinct slots and makes acquire() wait for a release', async () => {
  const pool = new SlotPool(4096, 2)
  const a = await pool.acquire()
  const b = await pool.acquire()
  assert.notEqual(a.byteOffset, b.byteOffset)
  let third: Uint8Array | undefined
  const waiting = pool.acquire().then((s) => (third = s))
  await new Promise((r) => setImmediate(r))
  assert.equal(third, undefined)
  pool.release(a)
  await waiting
  assert.equal(third, a)
  assert.throws(() => new SlotPool(1000, 1), RangeError)
})

test('SlotPool: a buffer with two users comes back after both releases; a longer request gets its own memory and counts; close() fails the waiting', async () => {
  const pool = new SlotPool(4096, 2)
  const a = await pool.acquire(100, 2)
  assert.equal(a.length, 100)
  const big = await pool.acquire(10000)
  assert.equal(big.length, 10000)
  assert.equal(pool.available, 0)
  let got: Uint8Array | undefined
  const waiting = pool.acquire().then((s) => (got = s))
  pool.release(a)
  await new Promise((r) => setImmediate(r))
  assert.equal(got, undefined, 'one user still has it')
  pool.release(a)
  await waiting
  assert.equal(got!.byteOffset, a.byteOffset)
  const last = pool.acquire()
  pool.close()
  await assert.rejects(last, /closed/)
  pool.release(big)
  await assert.rejects(pool.acquire(), /closed/)
})
