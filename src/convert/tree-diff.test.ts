import assert from 'node:assert/strict'
import { test } from 'node:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addedPackagePaths, categoryOf, diffTrees, type TreeSnapshot } from './tree-diff.js'

test('categoryOf() files kernel, modules, initramfs, GRUB and apt paths, and the rest as other', () => {
  assert.equal(categoryOf('/boot/vmlinuz-6.1.0-57-amd64'), 'kernel')
  assert.equal(categoryOf('/vmlinuz.old'), 'kernel')
  assert.equal(categoryOf('/usr/share/bug/linux-image-amd64/presubj'), 'kernel')
  assert.equal(categoryOf('/usr/lib/modules/6.1.0-57-amd64/modules.dep'), 'modules')
  assert.equal(categoryOf('/etc/hwimage/server-modules.list'), 'modules')
  assert.equal(categoryOf('/boot/initrd.img-6.1.0-57-amd64'), 'initramfs')
  assert.equal(categoryOf('/initrd.img'), 'initramfs')
  assert.equal(categoryOf('/boot/grub/grub.cfg'), 'grub')
  assert.equal(categoryOf('/var/lib/dpkg/status'), 'apt')
  assert.equal(categoryOf('/var/log/apt/history.log'), 'apt')
  assert.equal(categoryOf('/etc/fstab'), 'other')
  assert.equal(categoryOf('/boot/efi'), 'other')
})

test('diffTrees() counts added, removed and changed paths per category and lists the others', () => {
  const before = new Map([
    ['/etc/fstab', 'a'],
    ['/boot/vmlinuz-1-cloud-amd64', 'k'],
    ['/var/lib/dpkg/status', 's1'],
    ['/etc/motd', 'm'],
  ])
  const after = new Map([
    ['/etc/fstab', 'a'],
    ['/boot/vmlinuz-1-amd64', 'k2'],
    ['/var/lib/dpkg/status', 's2'],
    ['/etc/new', 'n'],
  ])
  const d = diffTrees(before, after)
  assert.deepEqual(d.categories.kernel, { added: 1, removed: 1, changed: 0 })
  assert.deepEqual(d.categories.apt, { added: 0, removed: 0, changed: 1 })
  assert.deepEqual(d.categories.other, { added: 1, removed: 1, changed: 0 })
  assert.deepEqual(d.other, ['- /etc/motd', '+ /etc/new'])
})

test('addedPackagePaths() files the paths of a package the conversion added (and its alternatives links) under its category', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-tree-diff-'))
  try {
    await mkdir(join(dir, 'var/lib/dpkg/info'), { recursive: true })
    await mkdir(join(dir, 'var/lib/dpkg/alternatives'), { recursive: true })
    await writeFile(join(dir, 'var/lib/dpkg/info/xz-utils.list'), '/.\n/usr/bin/xz\n/usr/bin/unxz\n')
    await writeFile(join(dir, 'var/lib/dpkg/info/grub-pc-bin.list'), '/usr/lib/grub/i386-pc/boot.img\n')
    await writeFile(join(dir, 'var/lib/dpkg/info/htop.list'), '/usr/bin/htop\n')
    await writeFile(join(dir, 'var/lib/dpkg/alternatives/lzma'), 'auto\n/usr/bin/lzma\n\n/usr/bin/xz\n20\n')
    const before: TreeSnapshot = new Map([['/var/lib/dpkg/info/htop.list', 'h']])
    const after: TreeSnapshot = new Map([
      ['/var/lib/dpkg/info/htop.list', 'h'],
      ['/var/lib/dpkg/info/xz-utils.list', 'x'],
      ['/var/lib/dpkg/info/grub-pc-bin.list', 'g'],
      ['/var/lib/dpkg/alternatives/lzma', 'a'],
    ])
    const owned = await addedPackagePaths(dir, before, after)
    assert.equal(owned.get('/usr/bin/xz'), 'kernel')
    assert.equal(owned.get('/usr/lib/grub/i386-pc/boot.img'), 'grub')
    assert.equal(owned.get('/usr/bin/htop'), undefined, 'a package that was there before is not the conversion’s')
    assert.equal(owned.has('/.'), false)
    const d = diffTrees(before, new Map([...after, ['/usr/bin/xz', 'x'], ['/etc/motd', 'm']]), owned)
    assert.deepEqual(d.other, ['+ /etc/motd'], 'xz is counted with the kernel, motd is not')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
