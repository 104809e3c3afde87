import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { nonZeroRuns } from './zero-runs.js'

test('nonZeroRuns() merges adjacent data blocks and skips zero blocks', () => {
  const b = new Uint8Array(4096 * 6)
  b[1] = 1 // block 0
  b[4096 + 4095] = 2 // block 1
  b[4096 * 4] = 3 // block 4
  assert.deepEqual(nonZeroRuns(b, 4096), [
    [0, 8192],
    [16384, 20480],
  ])
  assert.deepEqual(nonZeroRuns(new Uint8Array(8192), 4096), [])
})

test('nonZeroRuns() counts a short last block like the others', () => {
  const b = new Uint8Array(4096 + 100)
  b[4096 + 99] = 9
  assert.deepEqual(nonZeroRuns(b, 4096), [[4096, 4196]])
})

test('nonZeroRuns() covers exactly the non-zero bytes at block granularity (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4000 }), fc.integer({ min: 1, max: 64 }), (bytes, block) => {
      const sparse = bytes.map((x) => (x > 200 ? x : 0))
      const runs = nonZeroRuns(sparse, block)
      const covered = new Uint8Array(sparse.length)
      let last = -1
      for (const [a, b] of runs) {
        assert.ok(a > last && a < b && a % block === 0 && (b % block === 0 || b === sparse.length))
        covered.fill(1, a, b)
        last = b
      }
      for (let i = 0; i < sparse.length; i++) {
        const blockStart = i - (i % block)
        const blockHasData = sparse.subarray(blockStart, blockStart + block).some((x) => x !== 0)
        assert.equal(covered[i] === 1, blockHasData)
      }
    }),
  )
})
