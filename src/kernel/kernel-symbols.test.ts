import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../errors.js'
import { makeKernelFixture, type KernelFixture } from './kernel.fixture.js'
import { openKernel, type KernelTree } from './kernel-package.js'
import { findUnresolvedSymbols, kernelSystemMap, parseDepmodUnresolved } from './kernel-symbols.js'

let fx: KernelFixture
let tree: KernelTree
before(async () => {
  fx = await makeKernelFixture()
  tree = await openKernel(fx.root)
})
after(() => fx.cleanup())

test("kernelSystemMap() reads the exports out of vmlinuz when System.map is Debian's stub", async () => {
  assert.equal(
    await kernelSystemMap(tree),
    '0000000000000000 R __ksymtab___kmalloc\n0000000000000000 R __ksymtab_kmalloc\n0000000000000000 R __ksymtab_printk\n',
  )
})

test('findUnresolvedSymbols() finds nothing in a set closed under its dependencies', async () => {
  assert.deepEqual(await findUnresolvedSymbols(tree, tree.modules.keys()), [])
  assert.deepEqual(await findUnresolvedSymbols(tree, ['ahci', 'libata', 'scsi_mod']), [])
})

test('findUnresolvedSymbols() names each module and the symbol it misses', async () => {
  assert.deepEqual(await findUnresolvedSymbols(tree, ['ahci', 'ext4_extra', 'e1000e']), [
    { module: 'ahci', symbol: 'ata_host_activate' },
    { module: 'ext4_extra', symbol: 'ext4_thing' },
  ])
})

test('findUnresolvedSymbols() reports symbols the kernel itself does not export', async () => {
  const other = await makeKernelFixture({ kernelExports: ['kmalloc'] })
  try {
    const t = await openKernel(other.root)
    const missing = await findUnresolvedSymbols(t, ['e1000e'])
    assert.deepEqual(missing, [{ module: 'e1000e', symbol: 'printk' }])
  } finally {
    await other.cleanup()
  }
})

test('kernelSystemMap() needs vmlinuz or a real System.map', async () => {
  const t = { ...tree, root: null, vmlinuzPath: null }
  await assert.rejects(kernelSystemMap(t), (e: unknown) => e instanceof InputError && e.code === 'FORMAT_KERNEL')
  const real = await makeKernelFixture()
  try {
    await fs.writeFile(
      path.join(real.root, 'boot', `System.map-${real.version}`),
      'ffffffff81000000 r __ksymtab_printk\n',
    )
    assert.match(await kernelSystemMap(await openKernel(real.root)), /^ffffffff81000000 r __ksymtab_printk$/m)
  } finally {
    await real.cleanup()
  }
})

test('parseDepmodUnresolved() reads depmod -e warnings', () => {
  assert.deepEqual(
    parseDepmodUnresolved(
      'depmod: WARNING: /x/lib/modules/v/kernel/drivers/ata/ahci.ko.xz needs unknown symbol ahci_ops\ndepmod: WARNING: could not open modules.order\n',
    ),
    [{ module: 'ahci', symbol: 'ahci_ops' }],
  )
})
