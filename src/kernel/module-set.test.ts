import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import { makeKernelFixture, type KernelFixture } from './kernel.fixture.js'
import { openKernel, type KernelTree } from './kernel-package.js'
import { checkKnown, closeUnderDependencies, modulesUnder, resolveModuleSet, type ModulePolicy } from './module-set.js'

const POLICY: ModulePolicy = {
  name: 'test',
  rules: [
    { kind: 'drivers', bus: 'pci', under: 'drivers/net/ethernet', why: 'NICs' },
    { kind: 'subsystem', under: 'drivers/ata', why: 'SATA' },
    { kind: 'modules', names: ['ext4-extra', 'usb_*', 'no_such_module', 'ehci_hcd'], why: 'names' },
    { kind: 'exclude', names: ['sfc'], why: 'too big' },
  ],
}

let fx: KernelFixture
let tree: KernelTree
before(async () => {
  fx = await makeKernelFixture()
  tree = await openKernel(fx.root)
})
after(() => fx.cleanup())

test('resolveModuleSet() applies subsystem, driver, name and exclude rules and closes the set under modules.dep', () => {
  const r = resolveModuleSet(tree, POLICY)
  assert.deepEqual([...r.modules].sort(), [
    '8139too',
    'ahci',
    'e1000e',
    'ext4',
    'ext4_extra',
    'libata',
    'pata_acpi',
    'r8169',
    'scsi_mod',
    'usb_storage',
  ])
  assert.equal(r.reasons.get('e1000e'), 'test: pci drivers in drivers/net/ethernet')
  assert.equal(r.reasons.get('ext4'), 'dependency of ext4_extra')
  assert.deepEqual(r.missingFromKernel, ['no_such_module'])
  assert.deepEqual(r.builtinRequested, ['ehci_hcd'])
})

test('resolveModuleSet() adds modules from the spec and drops what needs a removed module', () => {
  const r = resolveModuleSet(tree, POLICY, { add: ['iwlwifi'], remove: ['scsi-mod'] })
  assert.ok(r.modules.has('iwlwifi'))
  assert.equal(r.reasons.get('iwlwifi'), 'added by the spec')
  for (const gone of ['scsi_mod', 'libata', 'ahci', 'pata_acpi', 'usb_storage']) assert.ok(!r.modules.has(gone), gone)
  assert.deepEqual(r.dropped.map((d) => d.module).sort(), ['ahci', 'libata', 'pata_acpi', 'scsi_mod', 'usb_storage'])
})

test('resolveModuleSet() refuses to remove what an added module needs', () => {
  assert.throws(
    () => resolveModuleSet(tree, POLICY, { add: ['usb-storage'], remove: ['scsi_mod'] }),
    (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'SPEC_INVALID')
      assert.match(e.message, /Cannot remove module "scsi_mod": added module "usb_storage" needs it/)
      return true
    },
  )
  assert.throws(() => resolveModuleSet(tree, POLICY, { remove: ['nls_base'] }), /built into vmlinuz/)
})

test('resolveModuleSet() names a module the kernel lacks with MODULE_UNKNOWN', () => {
  for (const extras of [{ add: ['e1000x'] }, { remove: ['e1000x'] }]) {
    assert.throws(
      () => resolveModuleSet(tree, POLICY, extras),
      (e: unknown) => {
        assert.ok(e instanceof InputError)
        assert.equal(e.code, 'MODULE_UNKNOWN')
        assert.equal(e.exitCode, 2)
        assert.match(e.message, /module "e1000x": kernel 6\.1\.0-test-amd64 has no such module/)
        return true
      },
    )
  }
  assert.equal(checkKnown(tree, 'snd-hda-intel', 'add'), 'snd_hda_intel')
})

test('modulesUnder() takes directory prefixes, not name prefixes', () => {
  assert.deepEqual(modulesUnder(tree, 'drivers/net/ethernet/realtek').sort(), ['8139too', 'r8169'])
  assert.deepEqual(modulesUnder(tree, 'drivers/net/ether'), [])
})

test('closeUnderDependencies() follows softdeps, resolving alias names as modprobe does', () => {
  const mod = (name: string, deps: string[] = []) =>
    [name, { name, path: `kernel/${name}.ko`, bytes: 1, deps }] as const
  const t = {
    ...tree,
    modules: new Map([
      mod('ext4', ['jbd2']),
      mod('jbd2'),
      mod('crc32c_generic'),
      mod('crc32c_intel'),
      mod('r8169'),
      mod('realtek'),
    ]),
    aliases: [
      { pattern: 'crypto-crc32c', module: 'crc32c_generic' },
      { pattern: 'crypto-crc32c', module: 'crc32c_intel' },
    ],
    softdeps: new Map([
      ['ext4', { pre: ['crypto-crc32c'], post: [] }],
      ['r8169', { pre: ['realtek'], post: ['missing'] }],
    ]),
  }
  const reasons = new Map<string, string>()
  assert.deepEqual([...closeUnderDependencies(t, ['ext4', 'r8169'], reasons)].sort(), [
    'crc32c_generic',
    'crc32c_intel',
    'ext4',
    'jbd2',
    'r8169',
    'realtek',
  ])
  assert.equal(reasons.get('realtek'), 'softdep of r8169')
  assert.equal(reasons.get('jbd2'), 'dependency of ext4')
})
