import assert from 'node:assert/strict'
import { test } from 'node:test'
import { categoryOf, diffTrees } from './tree-diff.js'

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
