import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SlotPool } from './aligned-memory.js'
import { HashThread } from './hash-thread.js'

const sha = (...parts: Uint8Array[]): string => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}

test('HashThread: interleaved updates to several digests give each its own SHA-256, in the order posted', async () => {
  const pool = new SlotPool(65536, 4)
  const slots = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()])
  for (const s of slots) s.set(randomBytes(s.length))
  const t = new HashThread()
  try {
    const updates = [
      t.update(1, slots[0]!),
      t.update(2, slots[1]!),
      t.update(1, slots[2]!.subarray(100, 5000)),
      t.update(2, slots[3]!),
    ]
    await Promise.all(updates)
    assert.equal(await t.digest(1), sha(slots[0]!, slots[2]!.subarray(100, 5000)))
    assert.equal(await t.digest(2), sha(slots[1]!, slots[3]!))
    // An id starts over after its digest; a digest of nothing is the empty string's.
    assert.equal(await t.digest(1), sha())
  } finally {
    await t.close()
  }
})

test('HashThread: a file is hashed by the thread; a missing one is an error with its code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hwimage-hash-'))
  const t = new HashThread()
  try {
    const bytes = randomBytes(3 * 1024 * 1024 + 17)
    writeFileSync(join(dir, 'f'), bytes)
    assert.equal(await t.file(join(dir, 'f')), sha(bytes))
    await assert.rejects(t.file(join(dir, 'missing')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT')
  } finally {
    await t.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('HashThread: memory that is not shared is refused; after close() every request fails', async () => {
  const t = new HashThread()
  await assert.rejects(t.update(1, new Uint8Array(16)), /shared memory/)
  await t.close()
  const pool = new SlotPool(4096, 1)
  await assert.rejects(t.update(1, await pool.acquire()), /closed/)
  await assert.rejects(t.digest(1), /closed/)
})

test('HashThread: each digest in the algorithm its updates name, SHA-1 beside SHA-256; mixing them on one id is refused', async () => {
  const pool = new SlotPool(65536, 2)
  const [a, b] = [await pool.acquire(), await pool.acquire()]
  a.set(randomBytes(a.length))
  b.set(randomBytes(b.length))
  const t = new HashThread()
  try {
    await Promise.all([
      t.update(1, a, 'sha1'),
      t.update(2, a),
      t.update(1, b.subarray(7, 9000), 'sha1'),
      t.update(2, b, 'sha256'),
    ])
    assert.equal(await t.digest(1, 'sha1'), createHash('sha1').update(a).update(b.subarray(7, 9000)).digest('hex'))
    assert.equal(await t.digest(2), sha(a, b))
    assert.equal(await t.digest(3, 'sha1'), createHash('sha1').digest('hex'))
    await t.update(4, a, 'sha1')
    await assert.rejects(t.update(4, b, 'sha256'), /digest 4 is sha1, not sha256/)
    await assert.rejects(t.digest(4, 'sha256'), /digest 4 is sha1, not sha256/)
  } finally {
    await t.close()
  }
})
