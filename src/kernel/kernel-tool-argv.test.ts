import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  aptGetDownloadArgv,
  compressArgv,
  decompressArgv,
  depmodArgv,
  dpkgDebExtractArgv,
  modinfoArgv,
} from './kernel-tool-argv.js'

test('depmodArgv() builds plain, dry-run and symbol-checking runs', () => {
  assert.deepEqual(depmodArgv({ baseDir: '/r', version: '6.1.0-56-amd64' }), ['depmod', '-b', '/r', '6.1.0-56-amd64'])
  assert.deepEqual(depmodArgv({ baseDir: '/r', version: 'v', errsyms: true, systemMap: '/m', dryRun: true }), [
    'depmod',
    '-n',
    '-e',
    '-F',
    '/m',
    '-b',
    '/r',
    'v',
  ])
})

test('compressArgv() compresses the way the kernel build does, and ends options before file names', () => {
  assert.deepEqual(compressArgv('xz', ['-a.ko']), [
    'xz',
    '--check=crc32',
    '--lzma2=dict=2MiB',
    '-f',
    '-T1',
    '--',
    '-a.ko',
  ])
  assert.deepEqual(compressArgv('zstd', ['a.ko']), ['zstd', '-q', '-19', '--rm', '-f', '--', 'a.ko'])
  assert.deepEqual(decompressArgv('xz', 'v.xz'), ['xz', '-d', '--single-stream', '-f', '--', 'v.xz'])
})

test('the other argv builders name their program first', () => {
  assert.deepEqual(dpkgDebExtractArgv('k.deb', '/d'), ['dpkg-deb', '-x', 'k.deb', '/d'])
  assert.deepEqual(modinfoArgv(['a.ko', 'b.ko']), ['modinfo', 'a.ko', 'b.ko'])
  assert.deepEqual(aptGetDownloadArgv('linux-image-6.1.0-56-amd64', '6.1.192-2'), [
    'apt-get',
    'download',
    '-q',
    'linux-image-6.1.0-56-amd64=6.1.192-2',
  ])
})
