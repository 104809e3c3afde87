import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../errors.js'
import { makeKernelFixture, type KernelFixture } from './kernel.fixture.js'
import { namedModuleSet } from './named-module-set.js'
import { openKernel, type KernelTree } from './kernel-package.js'

let fx: KernelFixture
let tree: KernelTree
before(async () => {
  fx = await makeKernelFixture()
  tree = await openKernel(fx.root)
})
after(() => fx.cleanup())

test('namedModuleSet() "all" is every module of the kernel', async () => {
  assert.equal((await namedModuleSet(tree, 'all')).size, tree.modules.size)
})

test('namedModuleSet() reads name,name… and a file of names, closed under dependencies', async () => {
  assert.deepEqual([...(await namedModuleSet(tree, 'ahci,r8169'))].sort(), ['ahci', 'libata', 'r8169', 'scsi_mod'])
  const file = path.join(fx.root, 'set.txt')
  await fs.writeFile(file, '# storage\nahci.ko\n\nsnd-hda-intel  # sound\n')
  assert.deepEqual([...(await namedModuleSet(tree, file))].sort(), ['ahci', 'libata', 'scsi_mod', 'snd_hda_intel'])
})

test('namedModuleSet() "server" applies the policy and the extras', async () => {
  const server = await namedModuleSet(tree, 'server')
  assert.ok(server.has('ahci') && !server.has('snd_hda_intel'))
  const changed = await namedModuleSet(tree, 'server', { add: ['snd-hda-intel'], remove: ['r8169'] })
  assert.ok(changed.has('snd_hda_intel') && !changed.has('r8169'))
})

test('namedModuleSet() refuses a module the kernel does not have', async () => {
  await assert.rejects(
    namedModuleSet(tree, 'ahci,nonesuch'),
    (e: unknown) => e instanceof InputError && e.code === 'MODULE_UNKNOWN' && /"nonesuch"/.test(e.message),
  )
})
