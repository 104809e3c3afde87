import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { makeKernelFixture } from './kernel.fixture.js'
import { openKernel, regularFileBytes } from './kernel-package.js'
import { pruneModuleTree } from './module-prune.js'

for (const compression of ['xz', 'zstd'] as const) {
  test(`pruneModuleTree() keeps only the set, compresses it with ${compression} and rebuilds the indexes`, async () => {
    const fx = await makeKernelFixture()
    try {
      const keep = new Set(['ahci', 'libata', 'scsi_mod', 'r8169'])
      const original = await fs.readFile(path.join(fx.modulesDir, 'kernel/drivers/ata/ahci.ko'))
      const r = await pruneModuleTree(fx.root, fx.version, keep, { compression })
      assert.equal(r.kept, 4)
      assert.equal(r.removed, 10)
      assert.ok(r.keptBytesAfter < r.keptBytesBefore)
      const ext = compression === 'xz' ? '.xz' : '.zst'
      const tree = await openKernel(fx.root)
      assert.deepEqual([...tree.modules.keys()].sort(), ['ahci', 'libata', 'r8169', 'scsi_mod'])
      assert.equal(tree.modules.get('ahci')!.path, `kernel/drivers/ata/ahci.ko${ext}`)
      assert.deepEqual(tree.modules.get('ahci')!.deps.sort(), ['libata', 'scsi_mod'])
      // Whole-file compression: the module comes back byte for byte.
      const packed = path.join(fx.modulesDir, `kernel/drivers/ata/ahci.ko${ext}`)
      const copy = path.join(fx.root, `copy.ko${ext}`)
      await fs.copyFile(packed, copy)
      await run(compression === 'xz' ? ['xz', '-d', copy] : ['zstd', '-q', '-d', '--rm', copy])
      assert.ok((await fs.readFile(path.join(fx.root, 'copy.ko'))).equals(original))
      // Directories left empty are gone; modules.order lists only what is kept.
      await assert.rejects(fs.stat(path.join(fx.modulesDir, 'kernel/sound')))
      const order = (await fs.readFile(path.join(fx.modulesDir, 'modules.order'), 'utf8')).trim().split('\n')
      assert.deepEqual(order, [
        'kernel/drivers/scsi/scsi_mod.ko',
        'kernel/drivers/ata/libata.ko',
        'kernel/drivers/ata/ahci.ko',
        'kernel/drivers/net/ethernet/realtek/r8169.ko',
      ])
      assert.equal(r.treeBytes, await regularFileBytes(fx.modulesDir))
      assert.equal(r.footprintBytes, r.treeBytes + r.vmlinuzBytes)
      const modinfo = await run([
        'modinfo',
        '-F',
        'firmware',
        path.join(fx.modulesDir, `kernel/drivers/net/ethernet/realtek/r8169.ko${ext}`),
      ])
      assert.equal(modinfo.stdout, 'rtl_nic/rtl8168g-2.fw\nrtl_nic/rtl8168h-2.fw\n')
    } finally {
      await fx.cleanup()
    }
  })
}

test('pruneModuleTree() with no compression only deletes', async () => {
  const fx = await makeKernelFixture()
  try {
    const r = await pruneModuleTree(fx.root, fx.version, new Set(['e1000e']), { compression: 'none' })
    assert.equal(r.keptBytesAfter, r.keptBytesBefore)
    assert.ok(await fs.stat(path.join(fx.modulesDir, 'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko')))
  } finally {
    await fx.cleanup()
  }
})

test('pruneModuleTree() refuses to keep modules the tree does not have, before deleting anything', async () => {
  const fx = await makeKernelFixture()
  try {
    await assert.rejects(
      pruneModuleTree(fx.root, fx.version, new Set(['ahci', 'nonesuch'])),
      (e: unknown) => e instanceof InputError && e.code === 'MODULE_UNKNOWN' && /"nonesuch"/.test(e.message),
    )
    assert.equal((await openKernel(fx.root)).modules.size, 14)
  } finally {
    await fx.cleanup()
  }
})
