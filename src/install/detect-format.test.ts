import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InputError } from '../errors.js'
import { detectFormat } from './detect-format.js'

const b = (...bytes: number[]): Uint8Array => new Uint8Array(bytes)

test('detectFormat() recognises zstd, xz, gzip and qcow2 by their magic bytes', () => {
  assert.equal(detectFormat(b(0x28, 0xb5, 0x2f, 0xfd, 0x04)), 'zstd')
  assert.equal(detectFormat(b(0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0)), 'zstd')
  assert.equal(detectFormat(b(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4)), 'xz')
  assert.equal(detectFormat(b(0x1f, 0x8b, 8, 0)), 'gzip')
  assert.equal(detectFormat(b(0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3)), 'qcow2')
})

test('detectFormat() treats anything else, including an MBR and an empty head, as raw', () => {
  const mbr = new Uint8Array(512)
  mbr[510] = 0x55
  mbr[511] = 0xaa
  assert.equal(detectFormat(mbr), 'raw')
  assert.equal(detectFormat(new Uint8Array(0)), 'raw')
  assert.equal(detectFormat(b(0x28, 0xb5, 0x2f)), 'raw')
})

test('detectFormat() refuses formats it knows but does not read, naming them', () => {
  assert.throws(
    () => detectFormat(new TextEncoder().encode('BZh91AY&SY')),
    (e: unknown) => e instanceof InputError && e.code === 'FORMAT_IMAGE' && /bzip2/.test(e.message),
  )
  assert.throws(
    () => detectFormat(new TextEncoder().encode('conectix')),
    (e: unknown) => e instanceof InputError && /VHD/.test(e.message),
  )
})
