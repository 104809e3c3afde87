import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Manifest } from '../build/manifest.js'
import { diffBuilds, formatChangelog } from './changelog.js'
import { parsePolicy } from './mirror-packages.js'

function manifest(packages: Record<string, string>, kernel: string, modules: string[], spec = 'a'): Manifest {
  return {
    hwimage: { manifestVersion: 1, version: '0.1.0' },
    packages,
    kernel: { flavor: 'server', version: kernel, footprintBytes: 38 << 20, initrdBytes: 1, modules },
    inputs: { specSha256: spec, sourceDateEpoch: 1, mirrors: [], suites: [] },
  } as unknown as Manifest
}

test('diffBuilds() lists packages added, removed and upgraded with versions, and the kernel and spec changes', () => {
  const old = manifest({ a: '1', b: '2', linux: '6.1.0-56' }, '6.1.0-56-amd64', ['ahci', 'nvme', 'old_mod'])
  const next = manifest(
    { a: '1', b: '3', c: '9', linux: '6.1.0-57' },
    '6.1.0-57-amd64',
    ['ahci', 'nvme', 'new_mod'],
    'b',
  )
  const c = diffBuilds({ serial: '20261201', manifest: old }, '20261202', next)
  assert.deepEqual(c.packages.added, [{ name: 'c', version: '9' }])
  assert.deepEqual(c.packages.removed, [])
  assert.deepEqual(c.packages.upgraded, [
    { name: 'b', from: '2', to: '3' },
    { name: 'linux', from: '6.1.0-56', to: '6.1.0-57' },
  ])
  assert.deepEqual([c.kernel.from, c.kernel.to], ['6.1.0-56-amd64', '6.1.0-57-amd64'])
  assert.deepEqual([c.kernel.modulesAdded, c.kernel.modulesRemoved], [['new_mod'], ['old_mod']])
  assert.equal(c.specChanged, true)
  const text = formatChangelog('org.hwimage:debian:12:amd64:server', c)
  assert.match(text, /^org\.hwimage:debian:12:amd64:server 20261202\nchanges since 20261201\n/)
  assert.match(text, /packages upgraded:\n {2}b 2 -> 3\n {2}linux 6\.1\.0-56 -> 6\.1\.0-57\n/)
  assert.match(text, /packages added:\n {2}c 9\n/)
  assert.match(text, /packages removed:\n {2}none\n/)
  assert.match(
    text,
    /kernel:\n {2}version 6\.1\.0-56-amd64 -> 6\.1\.0-57-amd64\n {2}modules added: new_mod\n {2}modules removed: old_mod\n/,
  )
  assert.match(text, /build:\n {2}the spec changed\n/)
})

test('diffBuilds() of a first build lists its packages and kernel', () => {
  const c = diffBuilds(undefined, '20261202', manifest({ a: '1' }, '6.1.0-57-amd64', ['ahci']))
  assert.equal(c.previous, undefined)
  const text = formatChangelog('p', c)
  assert.match(
    text,
    /first build of the product\n\npackages:\n {2}a 1\n\nkernel:\n {2}6\.1\.0-57-amd64 \(38\.0 MiB installed\)\n/,
  )
})

test('parsePolicy() reads each package’s candidate and leaves out packages without one', () => {
  const text = [
    'systemd:',
    '  Installed: (none)',
    '  Candidate: 252.36-1~deb12u1',
    '  Version table:',
    '     252.36-1~deb12u1 500',
    '        500 http://deb.debian.org/debian bookworm/main amd64 Packages',
    'libc6:amd64:',
    '  Installed: (none)',
    '  Candidate: 2.36-9+deb12u10',
    'gone:',
    '  Installed: (none)',
    '  Candidate: (none)',
    '',
  ].join('\n')
  assert.deepEqual(
    [...parsePolicy(text)],
    [
      ['systemd', '252.36-1~deb12u1'],
      ['libc6', '2.36-9+deb12u10'],
    ],
  )
})
