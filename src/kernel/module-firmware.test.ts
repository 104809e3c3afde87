import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { makeKernelFixture } from './kernel.fixture.js'
import { openKernel } from './kernel-package.js'
import { missingFirmware, moduleFirmware, parseModinfoFirmware } from './module-firmware.js'

test('parseModinfoFirmware() groups firmware: lines under each filename: block', () => {
  const out = parseModinfoFirmware(
    'filename:       /m/kernel/r8169.ko\nfirmware:       rtl_nic/a.fw\nalias:  x\nfirmware:       rtl_nic/b.fw\nfilename:       /m/kernel/ahci.ko.xz\nlicense: GPL\n',
  )
  assert.deepEqual(
    [...out],
    [
      ['r8169', ['rtl_nic/a.fw', 'rtl_nic/b.fw']],
      ['ahci', []],
    ],
  )
})

test('moduleFirmware() asks modinfo and keeps only modules that need firmware', async () => {
  const fx = await makeKernelFixture()
  try {
    const tree = await openKernel(fx.root)
    const fw = await moduleFirmware(tree, ['ahci', 'r8169', 'iwlwifi'])
    assert.deepEqual(
      [...fw],
      [
        ['r8169', ['rtl_nic/rtl8168g-2.fw', 'rtl_nic/rtl8168h-2.fw']],
        ['iwlwifi', ['iwlwifi-cc-a0-72.ucode']],
      ],
    )
  } finally {
    await fx.cleanup()
  }
})

test('missingFirmware() looks where the kernel looks, compressed files included', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-fw-test-'))
  try {
    await fs.mkdir(path.join(root, 'lib/firmware/rtl_nic'), { recursive: true })
    await fs.mkdir(path.join(root, 'lib/firmware/updates/6.1.0-x'), { recursive: true })
    await fs.writeFile(path.join(root, 'lib/firmware/rtl_nic/a.fw'), '')
    await fs.writeFile(path.join(root, 'lib/firmware/rtl_nic/b.fw.xz'), '')
    await fs.writeFile(path.join(root, 'lib/firmware/updates/6.1.0-x/c.bin'), '')
    await fs.writeFile(path.join(root, 'lib/firmware/rtl_nic/d.fw.zst'), '')
    const missing = await missingFirmware(
      ['rtl_nic/a.fw', 'rtl_nic/b.fw', 'c.bin', 'rtl_nic/d.fw', 'e.bin', 'rtl_nic/a*.fw'],
      root,
      '6.1.0-x',
      ['.xz'],
    )
    assert.deepEqual(missing, ['e.bin', 'rtl_nic/d.fw'])
  } finally {
    await fs.rm(root, { recursive: true, force: true })
  }
})
