import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSpec, DEFAULT_SPEC_YAML, MAX_IMAGE_BYTES } from './spec.js'
import { InputError } from '../errors.js'

function rejects(yaml: string, field: RegExp) {
  assert.throws(
    () => parseSpec(yaml),
    (e: unknown) => {
      assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`)
      assert.equal(e.code, 'SPEC_INVALID')
      assert.equal(e.exitCode, 2)
      assert.match(e.message, field)
      return true
    },
  )
}

test('parseSpec() fills the defaults of the embedded spec', () => {
  const s = parseSpec(DEFAULT_SPEC_YAML)
  assert.equal(s.release, 'bookworm')
  assert.equal(s.architecture, 'amd64')
  assert.equal(s.kernel.flavor, 'server')
  assert.equal(s.size, 2 * 1024 ** 3)
  assert.equal(s.root_size, 'fill')
  assert.equal(s.name, 'debian-12-server-amd64')
  assert.equal(s.cache, '/var/cache/hwimage/apt')
})

test('parseSpec() defaults the kernel flavor to server when the kernel key is partial', () => {
  assert.equal(parseSpec('kernel: { modules: { add: [sctp] } }\n').kernel.flavor, 'server')
  assert.equal(parseSpec('name: x\n').kernel.flavor, 'server')
})

test('parseSpec() reads every documented key', () => {
  const s = parseSpec(`
name: edge-node
release: bookworm
architecture: amd64
kernel: { flavor: cloud }
packages: [htop, vim-tiny]
files:
  - { path: /etc/motd, content: "hello\\n", mode: "0644" }
size: fit
root_size: 3G
mirror: http://mirror.example/debian
cache: null
`)
  assert.equal(s.name, 'edge-node')
  assert.equal(s.kernel.flavor, 'cloud')
  assert.deepEqual(s.packages, ['htop', 'vim-tiny'])
  assert.equal(s.files[0]?.path, '/etc/motd')
  assert.equal(s.size, 'fit')
  assert.equal(s.root_size, 3 * 1024 ** 3)
  assert.equal(s.mirror, 'http://mirror.example/debian')
  assert.equal(s.cache, null)
})

test('parseSpec() rejects an unknown key, naming it', () => rejects('relase: bookworm\n', /unknown key "relase"/))
test('parseSpec() rejects an unknown nested key, naming its path', () =>
  rejects('kernel: { flavour: generic }\n', /unknown key "kernel.flavour"/))
test('parseSpec() rejects a wrong type, naming the field', () => rejects('packages: htop\n', /field "packages"/))
test('parseSpec() rejects an unknown release', () => rejects('release: trixie\n', /field "release".*"bookworm"/))
test('parseSpec() rejects an unknown kernel flavor', () =>
  rejects('kernel: { flavor: realtime }\n', /field "kernel.flavor"/))
test('parseSpec() rejects an architecture other than amd64', () =>
  rejects('architecture: arm64\n', /field "architecture": only amd64/))
test('parseSpec() rejects a size below the minimum', () => rejects('size: 100M\n', /field "size"/))
test('parseSpec() rejects a malformed size', () => rejects('size: big\n', /field "size"/))
test('parseSpec() rejects a file with both content and source', () =>
  rejects('files: [{ path: /a, content: x, source: y }]\n', /field "files\[0\]"/))
test('parseSpec() rejects a relative file path', () =>
  rejects('files: [{ path: etc/a, content: x }]\n', /field "files\[0\].path"/))
test('parseSpec() rejects malformed YAML with its line', () =>
  rejects('release: [bookworm\nsize: 2G\n', /malformed YAML at line/))
test('parseSpec() rejects a spec that is a list', () => rejects('- a\n- b\n', /expected a mapping/))

test('parseSpec() rejects a size above the 1 TiB maximum, naming the field and the value', () => {
  rejects('size: 100T\n', /field "size": 100 TiB is larger than the 1 TiB maximum/)
  rejects(`size: ${2 ** 50}\n`, /field "size": 1024 TiB/)
  assert.equal(parseSpec('size: 1T\n').size, MAX_IMAGE_BYTES)
})

test('parseSpec() rejects a root_size larger than size minus the boot partitions and the GPT', () => {
  rejects('size: 2G\nroot_size: 3G\n', /field "root_size": 3 GiB is larger than the 1942 MiB that size 2 GiB leaves/)
  // 2 GiB minus 106 MiB is the largest root that fits; one MiB more does not.
  assert.equal(parseSpec('size: 2G\nroot_size: 1942M\n').root_size, 1942 * 1024 ** 2)
  rejects('size: 2G\nroot_size: 1943M\n', /field "root_size"/)
})

test('parseSpec() rejects a root_size above the maximum image when size is "fit"', () =>
  rejects(
    'size: fit\nroot_size: 2T\n',
    /field "root_size": 2 TiB is larger than the .* the 1 TiB maximum image leaves/,
  ))

test('parseSpec() rejects kernel.modules with a flavor that does not cut the module set', () => {
  rejects(
    'kernel: { flavor: generic, modules: { add: [sctp] } }\n',
    /field "kernel.modules": .*"server" flavor only.*"generic"/,
  )
  assert.equal(parseSpec('kernel: { flavor: cloud }\n').kernel.flavor, 'cloud')
})

test('parseSpec() rejects a file path that climbs out of the image or names a directory', () => {
  rejects(
    'files: [{ path: /../../../tmp/x, content: x }]\n',
    /field "files\[0\].path": expected a file path without ".."/,
  )
  rejects('files: [{ path: /etc/, content: x }]\n', /field "files\[0\].path"/)
  rejects('files: [{ path: /, content: x }]\n', /field "files\[0\].path"/)
  rejects('files: [{ path: /etc//motd, content: x }]\n', /field "files\[0\].path"/)
  assert.equal(parseSpec('files: [{ path: /etc/motd.d/10-x, content: x }]\n').files[0]?.path, '/etc/motd.d/10-x')
})
