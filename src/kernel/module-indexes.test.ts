import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import {
  moduleNameOf,
  parseBuiltinModinfo,
  parseModulesAlias,
  parseModulesBuiltin,
  parseModulesDep,
  parseModulesSoftdep,
} from './module-indexes.js'

test('moduleNameOf() strips the directory and compression suffix and turns dashes into underscores', () => {
  assert.equal(moduleNameOf('kernel/drivers/net/ethernet/realtek/8139too.ko'), '8139too')
  assert.equal(moduleNameOf('kernel/sound/pci/hda/snd-hda-intel.ko.xz'), 'snd_hda_intel')
  assert.equal(moduleNameOf('/x/kernel/fs/ext4/ext4.ko.zst'), 'ext4')
})

test('parseModulesDep() maps each module to its dependency paths in order', () => {
  const deps = parseModulesDep('kernel/a/ahci.ko: kernel/a/libahci.ko kernel/a/libata.ko\nkernel/a/libata.ko:\n')
  assert.deepEqual(deps.get('kernel/a/ahci.ko'), ['kernel/a/libahci.ko', 'kernel/a/libata.ko'])
  assert.deepEqual(deps.get('kernel/a/libata.ko'), [])
})

test('parseModulesDep() names the file and line of a malformed line', () => {
  assert.throws(
    () => parseModulesDep('kernel/a.ko:\nnonsense\n'),
    (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'FORMAT_KERNEL')
      assert.match(e.message, /modules\.dep line 2: "nonsense"/)
      return true
    },
  )
})

test('parseModulesAlias() reads alias lines and skips comments', () => {
  const a = parseModulesAlias(
    '# Aliases extracted from modules themselves.\nalias pci:v*d*sv*sd*bc01sc06i01* ahci\nalias fs-ext4 ext4\n',
  )
  assert.deepEqual(a, [
    { pattern: 'pci:v*d*sv*sd*bc01sc06i01*', module: 'ahci' },
    { pattern: 'fs-ext4', module: 'ext4' },
  ])
  assert.throws(() => parseModulesAlias('alias only-two\n'), /modules\.alias line 1/)
})

test('parseModulesSoftdep() keeps pre and post names and ignores names before either, as kmod does', () => {
  const s = parseModulesSoftdep(
    'softdep ext4 pre: crypto-crc32c\nsoftdep cifs gcm\nsoftdep r8169 pre: realtek post: a b\n',
  )
  assert.deepEqual(s.get('ext4'), { pre: ['crypto-crc32c'], post: [] })
  assert.deepEqual(s.get('cifs'), { pre: [], post: [] })
  assert.deepEqual(s.get('r8169'), { pre: ['realtek'], post: ['a', 'b'] })
})

test('parseModulesBuiltin() and parseBuiltinModinfo() list built-in drivers and their aliases', () => {
  assert.deepEqual(
    [...parseModulesBuiltin('kernel/fs/nls/nls_base.ko\nkernel/drivers/usb/host/ehci-hcd.ko\n')],
    ['nls_base', 'ehci_hcd'],
  )
  const info = parseBuiltinModinfo('ehci_hcd.license=GPL\0ehci_hcd.alias=pci:v*d*sv*sd*bc0Csc03i20*\0bad\0')
  assert.deepEqual([...info.names], ['ehci_hcd'])
  assert.deepEqual(info.aliases, [{ pattern: 'pci:v*d*sv*sd*bc0Csc03i20*', module: 'ehci_hcd' }])
})
