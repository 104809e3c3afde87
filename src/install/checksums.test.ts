import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InputError } from '../errors.js'
import { parseSha256Hex, parseSha256Sums, pickSha256 } from './checksums.js'

const A = 'a'.repeat(64)
const B = 'B'.repeat(64)

test('parseSha256Sums() reads text, binary and BSD lines and skips the rest', () => {
  const sums = parseSha256Sums(
    `# made by hwimage\n${A}  x.img\n${B} *x.img.zst\nSHA256 (x.qcow2) = ${A}\n\nnot a line\r\n`,
  )
  assert.deepEqual(
    [...sums],
    [
      ['x.img', A],
      ['x.img.zst', 'b'.repeat(64)],
      ['x.qcow2', A],
    ],
  )
})

test('pickSha256() finds a name by its last path segment and lists the names when it is missing', () => {
  const sums = parseSha256Sums(`${A}  ./out/x.img.zst\n`)
  assert.equal(pickSha256(sums, 'x.img.zst', 'SUMS'), A)
  assert.throws(
    () => pickSha256(sums, 'y.img.zst', 'SUMS'),
    (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND' && /"out\/x.img.zst"/.test(e.message),
  )
})

test('parseSha256Hex() lowercases 64 hex digits and refuses anything else', () => {
  assert.equal(parseSha256Hex(` ${B} `), 'b'.repeat(64))
  assert.throws(
    () => parseSha256Hex('abc'),
    (e: unknown) => e instanceof InputError && e.code === 'USAGE',
  )
})
