import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ifRangeMatches, notModified, parseRange } from './file-response.js'

test('parseRange(): one range, open-ended, suffix; past the end is unsatisfiable; several ranges or other units send the whole file', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99 })
  assert.deepEqual(parseRange('bytes=900-', 1000), { start: 900, end: 999 })
  assert.deepEqual(
    parseRange('bytes=900-5000', 1000),
    { start: 900, end: 999 },
    'an end past the size is cut to it (RFC 9110 §14.1.2)',
  )
  assert.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999 })
  assert.deepEqual(parseRange('bytes=-5000', 1000), { start: 0, end: 999 })
  assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable')
  assert.equal(parseRange('bytes=-0', 1000), 'unsatisfiable')
  assert.equal(parseRange('bytes=5-4', 1000), 'unsatisfiable')
  assert.equal(parseRange('bytes=0-1,5-6', 1000), undefined)
  assert.equal(parseRange('items=0-1', 1000), undefined)
  assert.equal(parseRange(undefined, 1000), undefined)
})

test('ifRangeMatches(): the strong ETag or the exact Last-Modified; a weak ETag never', () => {
  const etag = '"a-b-c"'
  const lm = 'Wed, 02 Dec 2026 06:00:00 GMT'
  assert.equal(ifRangeMatches(undefined, etag, lm), true)
  assert.equal(ifRangeMatches(etag, etag, lm), true)
  assert.equal(ifRangeMatches('"other"', etag, lm), false)
  assert.equal(ifRangeMatches(`W/${etag}`, etag, lm), false)
  assert.equal(ifRangeMatches(lm, etag, lm), true)
  assert.equal(ifRangeMatches('Wed, 02 Dec 2026 05:00:00 GMT', etag, lm), false)
})

test('notModified(): If-None-Match by weak comparison, in a list or "*"; else If-Modified-Since to the second', () => {
  const etag = '"a-b-c"'
  const mtime = Date.parse('Wed, 02 Dec 2026 06:00:00 GMT') + 750
  assert.equal(notModified(undefined, undefined, etag, mtime), false)
  assert.equal(notModified(etag, undefined, etag, mtime), true)
  assert.equal(notModified(`W/${etag}`, undefined, etag, mtime), true)
  assert.equal(notModified(`"x", ${etag}`, undefined, etag, mtime), true)
  assert.equal(notModified('*', undefined, etag, mtime), true)
  assert.equal(notModified('"other"', undefined, etag, mtime), false)
  // If-None-Match decides alone when present (§13.2.2).
  assert.equal(notModified('"other"', 'Wed, 02 Dec 2026 07:00:00 GMT', etag, mtime), false)
  assert.equal(notModified(undefined, 'Wed, 02 Dec 2026 06:00:00 GMT', etag, mtime), true)
  assert.equal(notModified(undefined, 'Wed, 02 Dec 2026 05:59:59 GMT', etag, mtime), false)
  assert.equal(notModified(undefined, 'not a date', etag, mtime), false)
})
