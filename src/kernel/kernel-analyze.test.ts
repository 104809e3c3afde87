import { test } from 'node:test'
import assert from 'node:assert/strict'
import { analyzeKernel, subsystemOf } from './kernel-analyze.js'
import { makeKernelFixture } from './kernel.fixture.js'
import { openKernel } from './kernel-package.js'

test('subsystemOf() groups by two directories, deeper in wide trees', () => {
  assert.equal(subsystemOf('kernel/drivers/scsi/megaraid/megaraid_sas.ko'), 'drivers/scsi')
  assert.equal(subsystemOf('kernel/fs/ext4/ext4.ko'), 'fs/ext4')
  assert.equal(subsystemOf('kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko'), 'drivers/net/ethernet/intel')
  assert.equal(subsystemOf('kernel/drivers/net/virtio_net.ko'), 'drivers/net')
  assert.equal(subsystemOf('kernel/drivers/usb/host/xhci-pci.ko'), 'drivers/usb/host')
  assert.equal(subsystemOf('kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko', 1), 'drivers')
  assert.equal(subsystemOf('updates/dkms/zfs.ko'), 'updates/dkms')
})

test('analyzeKernel() totals module sizes by subsystem and adds vmlinuz to the footprint', async () => {
  const fx = await makeKernelFixture()
  try {
    const tree = await openKernel(fx.root)
    const a = analyzeKernel(tree)
    const sum = [...tree.modules.values()].reduce((s, m) => s + m.bytes, 0)
    assert.equal(a.moduleBytes, sum)
    assert.equal(
      a.subsystems.reduce((s, g) => s + g.bytes, 0),
      sum,
    )
    assert.equal(
      a.subsystems.reduce((s, g) => s + g.modules, 0),
      14,
    )
    assert.equal(a.footprintBytes, tree.vmlinuzBytes + tree.treeBytes)
    assert.ok(a.treeBytes > a.moduleBytes, 'the tree also holds the indexes')
    assert.equal(a.pciDriverCount, 9)
    const ata = a.subsystems.find((s) => s.subsystem === 'drivers/ata')!
    assert.equal(ata.modules, 3)
    assert.deepEqual(
      a.subsystems.map((s) => s.bytes),
      [...a.subsystems.map((s) => s.bytes)].sort((x, y) => y - x),
    )
  } finally {
    await fx.cleanup()
  }
})
