import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { makeKernelFixture, type KernelFixture } from './kernel.fixture.js'
import { openKernel, regularFileBytes } from './kernel-package.js'

let fx: KernelFixture
let tmp: string
before(async () => {
  fx = await makeKernelFixture()
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-kpkg-test-'))
})
after(async () => {
  await fx.cleanup()
  await fs.rm(tmp, { recursive: true, force: true })
})

test('openKernel() reads an image root: version, vmlinuz, modules with sizes and deps, aliases, built-ins', async () => {
  const t = await openKernel(fx.root, { cacheDir: tmp })
  assert.equal(t.version, fx.version)
  assert.equal(t.vmlinuzPath, path.join(fx.root, 'boot', `vmlinuz-${fx.version}`))
  assert.equal(t.vmlinuzBytes, (await fs.stat(t.vmlinuzPath!)).size)
  assert.equal(t.modules.size, 14)
  const ahci = t.modules.get('ahci')!
  assert.equal(ahci.path, 'kernel/drivers/ata/ahci.ko')
  assert.equal(ahci.bytes, (await fs.stat(path.join(fx.modulesDir, ahci.path))).size)
  assert.deepEqual(ahci.deps.sort(), ['libata', 'scsi_mod'])
  assert.ok(t.modules.has('snd_hda_intel'))
  assert.ok(t.aliases.some((a) => a.module === 'ahci' && a.pattern === 'pci:v*d*sv*sd*bc01sc06i01*'))
  assert.deepEqual([...t.builtin].sort(), ['ehci_hcd', 'nls_base'])
  assert.equal(t.treeBytes, await regularFileBytes(fx.modulesDir))
})

test('openKernel() accepts the lib/modules/<version> directory itself', async () => {
  const t = await openKernel(fx.modulesDir, { cacheDir: tmp })
  assert.equal(t.version, fx.version)
  assert.equal(t.root, fx.root)
  assert.ok(t.vmlinuzPath)
})

test('openKernel() runs depmod on a shadow tree when the indexes are missing, leaving the tree untouched', async () => {
  const bare = await makeKernelFixture({ depmod: false })
  try {
    const before = (await fs.readdir(bare.modulesDir)).sort()
    const t = await openKernel(bare.root, { cacheDir: tmp })
    assert.deepEqual(t.modules.get('ext4_extra')!.deps, ['ext4'])
    assert.ok(t.aliases.length > 0)
    assert.deepEqual((await fs.readdir(bare.modulesDir)).sort(), before)
  } finally {
    await bare.cleanup()
  }
})

test('openKernel() unpacks a .deb once into the cache and reuses it', async () => {
  const pkg = path.join(tmp, 'pkgroot')
  await fs.cp(fx.root, pkg, { recursive: true })
  await fs.mkdir(path.join(pkg, 'DEBIAN'))
  await fs.writeFile(
    path.join(pkg, 'DEBIAN', 'control'),
    'Package: linux-image-test\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.org>\nDescription: test\n',
  )
  const deb = path.join(tmp, 'linux-image-test_1_amd64.deb')
  await run(['dpkg-deb', '--root-owner-group', '-Zxz', '-b', pkg, deb])
  const cache = path.join(tmp, 'cache')
  const t = await openKernel(deb, { cacheDir: cache })
  assert.equal(t.source, deb)
  assert.equal(t.modules.size, 14)
  assert.ok(t.modulesDir.startsWith(path.join(cache, 'kernels')))
  const again = await openKernel(deb, { cacheDir: cache })
  assert.equal(again.modulesDir, t.modulesDir)
})

test('openKernel() names a kernel that does not exist', async () => {
  await assert.rejects(openKernel(path.join(tmp, 'nope.deb'), { cacheDir: tmp }), (e: unknown) => {
    assert.ok(e instanceof InputError)
    assert.equal(e.code, 'NOT_FOUND')
    assert.match(e.message, /nope\.deb/)
    return true
  })
})

test('openKernel() rejects a file that is not a Debian package, and a corrupt one, with FORMAT_KERNEL', async () => {
  const text = path.join(tmp, 'kernel.deb')
  await fs.writeFile(text, 'this is not a package\n')
  await assert.rejects(
    openKernel(text, { cacheDir: tmp }),
    (e: unknown) =>
      e instanceof InputError && e.code === 'FORMAT_KERNEL' && /kernel\.deb.*not a Debian package/.test(e.message),
  )
  const corrupt = path.join(tmp, 'corrupt.deb')
  await fs.writeFile(corrupt, '!<arch>\ngarbage that dpkg-deb cannot read')
  await assert.rejects(
    openKernel(corrupt, { cacheDir: tmp }),
    (e: unknown) =>
      e instanceof InputError && e.code === 'FORMAT_KERNEL' && /corrupt\.deb.*cannot unpack/.test(e.message),
  )
})

test('openKernel() rejects a tree without lib/modules, and one with two kernels', async () => {
  const empty = path.join(tmp, 'empty-root')
  await fs.mkdir(empty, { recursive: true })
  await assert.rejects(
    openKernel(empty, { cacheDir: tmp }),
    (e: unknown) => e instanceof InputError && e.code === 'FORMAT_KERNEL' && /no lib\/modules/.test(e.message),
  )
  const two = path.join(tmp, 'two-root')
  await fs.mkdir(path.join(two, 'lib', 'modules', '6.1.0-a'), { recursive: true })
  await fs.mkdir(path.join(two, 'lib', 'modules', '6.1.0-b'), { recursive: true })
  await assert.rejects(openKernel(two, { cacheDir: tmp }), /holds 2 kernels/)
})

test('openKernel() reports a module that modules.dep lists but the tree lacks', async () => {
  const broken = await makeKernelFixture()
  try {
    await fs.rm(path.join(broken.modulesDir, 'kernel/fs/ext4/ext4.ko'))
    await assert.rejects(
      openKernel(broken.root, { cacheDir: tmp }),
      (e: unknown) =>
        e instanceof InputError && e.code === 'FORMAT_KERNEL' && /kernel\/fs\/ext4\/ext4\.ko/.test(e.message),
    )
  } finally {
    await broken.cleanup()
  }
})
