import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import { debFileName, fetchKernelPackage, versionedKernelPackage } from './kernel-fetch.js'

test('versionedKernelPackage() follows a metapackage to the versioned image', () => {
  assert.equal(
    versionedKernelPackage('linux-image-amd64', 'linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n'),
    'linux-image-6.1.0-56-amd64',
  )
  assert.equal(
    versionedKernelPackage(
      'linux-image-6.1.0-56-amd64',
      'linux-image-6.1.0-56-amd64\n  Depends: kmod\n  Depends: linux-base\n',
    ),
    'linux-image-6.1.0-56-amd64',
  )
})

test('debFileName() names the file apt-get download writes, epoch escaped', () => {
  assert.equal(
    debFileName('Package: linux-image-6.1.0-56-amd64\nVersion: 6.1.192-2\nArchitecture: amd64\n'),
    'linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb',
  )
  assert.equal(debFileName('Package: x\nVersion: 1:2.0-1\nArchitecture: all\n'), 'x_1%3a2.0-1_all.deb')
})

test('fetchKernelPackage() rejects a name that is not a package name before asking apt', async () => {
  await assert.rejects(
    fetchKernelPackage('../etc/passwd', { cacheDir: '/nonexistent' }),
    (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND',
  )
})
