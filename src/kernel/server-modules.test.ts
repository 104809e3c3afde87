import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { HwimageError } from '../errors.js'
import { FIXTURE_MODULES, makeKernelFixture, type KernelFixture } from './kernel.fixture.js'
import { openKernel, type KernelTree } from './kernel-package.js'
import type { ModulePolicy } from './module-set.js'
import { LAB_MUST_HAVES, SERVER_POLICY } from './server-policy.js'
import { selectServerModules } from './server-modules.js'

const POLICY: ModulePolicy = {
  name: 'test',
  rules: [
    { kind: 'drivers', bus: 'pci', under: 'drivers/net/ethernet', why: 'NICs' },
    { kind: 'modules', names: ['ahci'], why: 'SATA' },
  ],
}

let fx: KernelFixture
let tree: KernelTree
before(async () => {
  fx = await makeKernelFixture()
  tree = await openKernel(fx.root)
})
after(() => fx.cleanup())

test('selectServerModules() returns the closed set, its firmware and its footprint', async () => {
  const s = await selectServerModules(tree, POLICY, { add: ['iwlwifi'] })
  assert.deepEqual(s.modules, ['8139too', 'ahci', 'e1000e', 'iwlwifi', 'libata', 'r8169', 'scsi_mod', 'sfc'])
  assert.equal(s.symbolsChecked, true)
  assert.deepEqual(s.firmware, ['iwlwifi-cc-a0-72.ucode', 'rtl_nic/rtl8168g-2.fw', 'rtl_nic/rtl8168h-2.fw'])
  assert.deepEqual(Object.keys(s.firmwareByModule), ['iwlwifi', 'r8169'])
  assert.equal(s.missingFirmware, null)
  const bytes = s.modules.reduce((sum, m) => sum + tree.modules.get(m)!.bytes, 0)
  assert.equal(s.moduleBytes, bytes)
  assert.equal(s.footprintBytes, bytes + tree.vmlinuzBytes)
  assert.equal(s.reasons.libata, 'dependency of ahci')
})

test('selectServerModules() lists the firmware an image root lacks', async () => {
  const image = path.join(fx.root, 'image')
  await fs.mkdir(path.join(image, 'lib/firmware/rtl_nic'), { recursive: true })
  await fs.writeFile(path.join(image, 'lib/firmware/rtl_nic/rtl8168g-2.fw.xz'), '')
  const s = await selectServerModules(tree, POLICY, {}, { imageRoot: image })
  assert.deepEqual(s.missingFirmware, ['rtl_nic/rtl8168h-2.fw'])
})

test('selectServerModules() fails with KERNEL_UNRESOLVED when a module needs a symbol nothing exports', async () => {
  const broken = await makeKernelFixture({
    modules: [
      ...FIXTURE_MODULES,
      {
        path: 'kernel/drivers/net/ethernet/odd/odd.ko',
        needs: ['no_such_symbol'],
        aliases: ['pci:v0000AAAAd00000001sv*sd*bc*sc*i*'],
      },
    ],
  })
  try {
    const t = await openKernel(broken.root)
    await assert.rejects(selectServerModules(t, POLICY), (e: unknown) => {
      assert.ok(e instanceof HwimageError)
      assert.equal(e.code, 'KERNEL_UNRESOLVED')
      assert.match(e.message, /odd needs no_such_symbol/)
      return true
    })
    const unchecked = await selectServerModules(t, POLICY, {}, { skipSymbolCheck: true })
    assert.ok(unchecked.modules.includes('odd'))
  } finally {
    await broken.cleanup()
  }
})

test('the server policy reports its must-haves missing from a kernel that lacks them', async () => {
  const s = await selectServerModules(tree, SERVER_POLICY, {}, { skipSymbolCheck: true })
  assert.ok(s.missingFromKernel.includes('megaraid_sas'))
  assert.ok(!s.missingFromKernel.includes('ahci'))
  assert.ok(s.modules.includes('ahci') && s.modules.includes('e1000e') && s.modules.includes('ext4'))
  assert.ok(!s.modules.includes('snd_hda_intel') && !s.modules.includes('iwlwifi'))
})

test('every rule of the server policy says why', () => {
  for (const rule of SERVER_POLICY.rules) assert.ok(rule.why.length > 10, JSON.stringify(rule))
  assert.ok(LAB_MUST_HAVES.includes('mptsas') && LAB_MUST_HAVES.includes('8139cp'))
})
