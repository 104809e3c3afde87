import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FormatError } from '../errors.js'
import { buildElf, buildVmlinuxElf } from './elf.fixture.js'
import { buildBzImage } from './kernel.fixture.js'
import { exportedSymbols, locateBzImagePayload, renderSystemMap } from './vmlinux-exports.js'

test('exportedSymbols() reads __ksymtab and __ksymtab_gpl through their PREL32 offsets', () => {
  assert.deepEqual(exportedSymbols(buildVmlinuxElf(['printk', 'kfree'], ['__kmalloc'])), [
    '__kmalloc',
    'kfree',
    'printk',
  ])
})

test('exportedSymbols() finds a name the linker stored as the tail of another', () => {
  // "__kmalloc\0" holds "kmalloc" at offset 2: splitting the section at NULs would miss it.
  const strings = new TextEncoder().encode('__kmalloc\0')
  const base = 0xffffffff82000000n
  const stringsAddr = base + 0x1000n
  const table = new Uint8Array(24)
  const v = new DataView(table.buffer)
  v.setInt32(4, Number(stringsAddr - (base + 4n)), true)
  v.setInt32(12 + 4, Number(stringsAddr + 2n - (base + 16n)), true)
  const elf = buildElf(
    [
      { name: '__ksymtab', type: 1, data: table, addr: base },
      { name: '__ksymtab_strings', type: 1, data: strings, addr: stringsAddr },
    ],
    2,
  )
  assert.deepEqual(exportedSymbols(elf), ['__kmalloc', 'kmalloc'])
})

test('exportedSymbols() rejects a file that is not ELF, and an ELF without an export table', () => {
  assert.throws(
    () => exportedSymbols(new Uint8Array(100)),
    (e: unknown) => e instanceof FormatError && e.code === 'FORMAT_KERNEL' && /not an ELF file/.test(e.message),
  )
  assert.throws(
    () => exportedSymbols(buildElf([{ name: '.text', type: 1, data: new Uint8Array(4) }])),
    /no __ksymtab_strings section/,
  )
})

test('exportedSymbols() rejects entries that point outside the strings', () => {
  const elf = buildVmlinuxElf(['printk'])
  // Corrupt the name offset of the one entry (first section's data starts at byte 64).
  new DataView(elf.buffer).setInt32(64 + 4, 0x7fff0000, true)
  assert.throws(() => exportedSymbols(elf), /do not point into __ksymtab_strings/)
})

test('locateBzImagePayload() finds the xz payload without the appended size', async () => {
  const image = await buildBzImage(buildVmlinuxElf(['printk']))
  const p = locateBzImagePayload(image)
  assert.equal(p.compression, 'xz')
  assert.equal(p.offset, 1024)
  assert.equal(p.offset + p.length + 4, image.length)
})

test('locateBzImagePayload() names what is wrong with a damaged header', async () => {
  const image = await buildBzImage(buildVmlinuxElf(['printk']))
  const noMagic = new Uint8Array(image)
  noMagic[0x202] = 0
  assert.throws(() => locateBzImagePayload(noMagic, 'vmlinuz-x'), /Cannot read vmlinuz-x: no "HdrS" setup header/)
  const oldProtocol = new Uint8Array(image)
  new DataView(oldProtocol.buffer).setUint16(0x206, 0x0205, true)
  assert.throws(() => locateBzImagePayload(oldProtocol), /boot protocol 2\.5 has no payload fields/)
  const tooLong = new Uint8Array(image)
  new DataView(tooLong.buffer).setUint32(0x24c, image.length, true)
  assert.throws(() => locateBzImagePayload(tooLong), /runs past the end/)
  assert.throws(() => locateBzImagePayload(new Uint8Array(10)), /too short/)
})

test('renderSystemMap() writes the lines depmod -F looks for', () => {
  assert.equal(renderSystemMap(['printk']), '0000000000000000 R __ksymtab_printk\n')
})
