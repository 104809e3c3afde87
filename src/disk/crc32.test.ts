import { test } from 'node:test'
import assert from 'node:assert/strict'
import { crc32 as zlibCrc32 } from 'node:zlib'
import fc from 'fast-check'
import { crc32 } from './crc32.js'

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s)

test('crc32() of the empty input is 0', () => {
  assert.equal(crc32(new Uint8Array(0)), 0)
})

test('crc32() gives the standard check value 0xCBF43926 for "123456789"', () => {
  assert.equal(crc32(ascii('123456789')), 0xcbf43926)
})

test('crc32() gives the known value for "The quick brown fox jumps over the lazy dog"', () => {
  assert.equal(crc32(ascii('The quick brown fox jumps over the lazy dog')), 0x414fa339)
})

test('crc32() of 32 zero bytes is 0x190A55AD', () => {
  assert.equal(crc32(new Uint8Array(32)), 0x190a55ad)
})

test('crc32() always returns an unsigned 32-bit integer', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
      const c = crc32(b)
      return Number.isInteger(c) && c >= 0 && c <= 0xffff_ffff
    }),
  )
})

test('crc32() agrees with a bit-by-bit reference on random inputs of every length mod 8', () => {
  const reference = (b: Uint8Array): number => {
    let c = 0xffffffff
    for (const x of b) {
      c ^= x
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    }
    return ~c >>> 0
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => crc32(b) === reference(b)),
    { numRuns: 300 },
  )
})

test('crc32() continues over split input when given the previous result as seed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (b, cut) => {
      const k = b.length === 0 ? 0 : cut % (b.length + 1)
      return crc32(b.subarray(k), crc32(b.subarray(0, k))) === crc32(b)
    }),
  )
})

test('crc32() agrees with node:zlib crc32', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 1000 }), (b) => crc32(b) === zlibCrc32(b)))
})

test('crc32() only reads the view it is given, not the whole underlying buffer', () => {
  const buf = new Uint8Array(64).fill(0xff)
  buf.set(ascii('123456789'), 10)
  assert.equal(crc32(buf.subarray(10, 19)), 0xcbf43926)
})

test('crc32() hashes 16 MiB in under a second', () => {
  const b = new Uint8Array(16 << 20)
  for (let i = 0; i < b.length; i++) b[i] = i * 31
  const t0 = performance.now()
  crc32(b)
  const ms = performance.now() - t0
  assert.ok(ms < 1000, `16 MiB took ${ms.toFixed(0)} ms`)
})
