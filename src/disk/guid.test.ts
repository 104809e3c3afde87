import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  formatGuid,
  parseGuid,
  randomGuid,
  normalizeGuid,
  isGuid,
  GUID_BIOS_BOOT,
  GUID_ESP,
  GUID_LINUX_DATA,
  GUID_LINUX_ROOT_X86_64,
  GUID_MS_BASIC_DATA,
  GUID_ZERO,
} from './guid.js'
import { FormatError } from '../errors.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('parseGuid() encodes the ESP type GUID in the mixed-endian byte order GPT uses', () => {
  // The on-disk bytes of the ESP type GUID, as any GPT disk shows them (e.g. `xxd` of an entry).
  assert.equal(hex(parseGuid(GUID_ESP)), '28732ac11ff8d211ba4b00a0c93ec93b')
})

test('parseGuid() of the BIOS boot GUID spells "Hah!IdontNeedEFI" on disk', () => {
  assert.equal(Buffer.from(parseGuid(GUID_BIOS_BOOT)).toString('latin1'), 'Hah!IdontNeedEFI')
})

test('formatGuid() turns the on-disk bytes back into the uppercase canonical form', () => {
  assert.equal(formatGuid(Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex')), GUID_ESP)
})

test('formatGuid(parseGuid(x)) is the uppercase form of x for every known type GUID', () => {
  for (const g of [GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_DATA, GUID_LINUX_ROOT_X86_64, GUID_MS_BASIC_DATA, GUID_ZERO]) {
    assert.equal(formatGuid(parseGuid(g)), g)
    assert.equal(formatGuid(parseGuid(g.toLowerCase())), g)
  }
})

test('parseGuid(formatGuid(b)) returns the same 16 bytes for any bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => hex(parseGuid(formatGuid(b))) === hex(b)),
  )
})

test('formatGuid() reads only the first 16 bytes of a view into a larger buffer', () => {
  const buf = new Uint8Array(40)
  buf.set(parseGuid(GUID_LINUX_DATA), 7)
  assert.equal(formatGuid(buf.subarray(7)), GUID_LINUX_DATA)
})

test('parseGuid() rejects text that is not a GUID with a FormatError naming it', () => {
  for (const bad of [
    '',
    'C12A7328F81F11D2BA4B00A0C93EC93B',
    '{C12A7328-F81F-11D2-BA4B-00A0C93EC93B}',
    'C12A7328-F81F-11D2-BA4B-00A0C93EC93',
    'G12A7328-F81F-11D2-BA4B-00A0C93EC93B',
    ' C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  ]) {
    assert.throws(
      () => parseGuid(bad),
      (e: unknown) => e instanceof FormatError && e.code === 'FORMAT_GPT' && e.message.includes(`"${bad}"`),
    )
  }
})

test('formatGuid() rejects fewer than 16 bytes with a FormatError', () => {
  assert.throws(
    () => formatGuid(new Uint8Array(15)),
    (e: unknown) => e instanceof FormatError && /expected 16 bytes, got 15/.test(e.message),
  )
})

test('randomGuid() returns distinct uppercase version-4 GUIDs', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 100; i++) {
    const g = randomGuid()
    assert.match(g, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/)
    seen.add(g)
  }
  assert.equal(seen.size, 100)
})

test('normalizeGuid() uppercases and isGuid() accepts only the canonical shape', () => {
  assert.equal(normalizeGuid(GUID_ESP.toLowerCase()), GUID_ESP)
  assert.equal(isGuid(GUID_ESP), true)
  assert.equal(isGuid('not-a-guid'), false)
})
