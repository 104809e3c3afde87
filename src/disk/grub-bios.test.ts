import { test } from 'node:test'
import assert from 'node:assert/strict'
import { patchBootImage, patchCoreImage, MBR_BOOT_CODE_BYTES } from './grub-bios.js'
import { FormatError } from '../errors.js'

function fakeBootImg(): Uint8Array {
  const b = new Uint8Array(512).fill(0x11)
  b[0x64] = 0xff
  b[0x66] = 0xeb
  b[0x67] = 0x05
  b[510] = 0x55
  b[511] = 0xaa
  return b
}

function fakeCoreImg(sectors: number): Uint8Array {
  const c = new Uint8Array(sectors * 512).fill(0x22)
  const v = new DataView(c.buffer)
  v.setBigUint64(500, 2n, true)
  v.setUint16(508, sectors - 1, true)
  v.setUint16(510, 0x820, true)
  return c
}

test('patchBootImage() points boot.img at core.img and enables the drive check', () => {
  const out = patchBootImage(fakeBootImg(), 2048n)
  assert.equal(out.length, MBR_BOOT_CODE_BYTES)
  const v = new DataView(out.buffer)
  assert.equal(v.getBigUint64(0x5c, true), 2048n)
  assert.equal(out[0x64], 0xff)
  assert.deepEqual([out[0x66], out[0x67]], [0x90, 0x90])
  assert.equal(out[0], 0x11)
})

test('patchBootImage() rejects a boot.img without the boot signature', () => {
  const b = fakeBootImg()
  b[510] = 0
  assert.throws(() => patchBootImage(b, 1n), FormatError)
})

test('patchCoreImage() makes the first blocklist start right after core.img first sector', () => {
  const core = fakeCoreImg(60)
  const out = patchCoreImage(core, 2048n)
  const v = new DataView(out.buffer)
  assert.equal(v.getBigUint64(500, true), 2049n)
  assert.equal(v.getUint16(508, true), 59)
  assert.equal(v.getUint16(510, true), 0x820)
  assert.equal(new DataView(core.buffer).getBigUint64(500, true), 2n, 'input is not mutated')
})

test('patchCoreImage() rejects a core.img whose blocklist length disagrees with its size', () => {
  assert.throws(() => patchCoreImage(fakeCoreImg(60).subarray(0, 59 * 512), 2048n), FormatError)
})
