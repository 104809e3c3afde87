import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dpkgArchitecture, parseDumpe2fs, parseOsRelease } from './inspect-input.js'
import { initramfsModules, installedKernelPackages, isGenericKernelPackage, swapScript } from './kernel-swap.js'
import { defaultName } from './convert-image.js'

test('parseOsRelease() unquotes values', () => {
  assert.deepEqual(
    parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'),
    {
      PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)',
      ID: 'debian',
      VERSION_CODENAME: 'bookworm',
    },
  )
})

test('dpkgArchitecture() reads the dpkg package stanza only', () => {
  const status = 'Package: foo\nArchitecture: all\n\nPackage: dpkg\nStatus: install ok installed\nArchitecture: arm64\n'
  assert.equal(dpkgArchitecture(status), 'arm64')
  assert.equal(dpkgArchitecture('Package: foo\nArchitecture: amd64\n'), undefined)
})

test('parseDumpe2fs() reads the ids and features a new file system must keep', () => {
  const text = [
    'Filesystem volume name:   <none>',
    'Filesystem UUID:          c20e8a59-f340-4c67-99a7-02cf75c4d281',
    'Filesystem features:      has_journal ext_attr 64bit metadata_csum',
    'Inode count:              124416',
    'Block count:              497152',
    'Free blocks:              341227',
    'Block size:               4096',
    'Inode size:\t          256',
  ].join('\n')
  assert.deepEqual(parseDumpe2fs(text), {
    uuid: 'c20e8a59-f340-4c67-99a7-02cf75c4d281',
    label: '',
    features: ['has_journal', 'ext_attr', '64bit', 'metadata_csum'],
    blockSize: 4096,
    blockCount: 497152,
    freeBlocks: 341227,
    inodeSize: 256,
    inodeCount: 124416,
  })
})

test('isGenericKernelPackage() keeps Debian generic kernels and not cloud or rt ones', () => {
  assert.ok(isGenericKernelPackage('linux-image-amd64'))
  assert.ok(isGenericKernelPackage('linux-image-6.1.0-57-amd64'))
  assert.ok(!isGenericKernelPackage('linux-image-6.1.0-57-cloud-amd64'))
  assert.ok(!isGenericKernelPackage('linux-image-cloud-amd64'))
  assert.ok(!isGenericKernelPackage('linux-image-6.1.0-57-rt-amd64'))
})

test('installedKernelPackages() lists installed linux-image packages with versions', () => {
  const status =
    'Package: linux-image-cloud-amd64\nStatus: install ok installed\nVersion: 6.1.192-3\n\nPackage: linux-image-6.1.0-50-cloud-amd64\nStatus: deinstall ok config-files\nVersion: 6.1.150-1\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2\n'
  assert.deepEqual(installedKernelPackages(status), { 'linux-image-cloud-amd64': '6.1.192-3' })
})

test('initramfsModules() takes the last MODULES= of initramfs.conf and conf.d', () => {
  assert.equal(initramfsModules(['MODULES=most\n', '# x\nMODULES=dep\n']), 'dep')
  assert.equal(initramfsModules(['# none\n']), undefined)
})

test('swapScript() installs before it purges, then runs update-grub (tree-chroot.ts diverts grub-probe around it)', () => {
  const s = swapScript({ purge: ['linux-image-cloud-amd64'], install: ['linux-image-amd64'], keepLists: false })
  const lines = s.split('\n')
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l))
  assert.ok(
    at(/^apt-get install -y --no-install-recommends linux-image-amd64$/) <
      at(/^apt-get purge -y linux-image-cloud-amd64$/),
  )
  assert.ok(at(/purge/) < at(/^update-grub$/))
  assert.ok(!s.includes('dpkg-divert'), 'the stand-in probe is runInTreeChroot()’s job')
  assert.ok(at(/lists/) > 0)
  assert.ok(!swapScript({ purge: [], install: ['linux-image-amd64'], keepLists: true }).includes('purge'))
})

test('defaultName() drops image extensions and adds -hw', () => {
  assert.equal(defaultName('/x/debian-12-genericcloud-amd64.qcow2'), 'debian-12-genericcloud-amd64-hw')
  assert.equal(defaultName('https://h/p/test-cloud.img.zst?x=1'), 'test-cloud-hw')
})
