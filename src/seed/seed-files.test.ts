import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { parse } from 'yaml'
import { parseSeed } from './seed-schema.js'
import { CONTRACT_VERSION, seedFiles, type SeedFile } from './seed-files.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqExampleKeyOnly ops@example'
const SEED = parseSeed(`
hostname: metal-01
fqdn: metal-01.example.net
instance_id: iid-metal-01
users:
  - {name: ops, ssh_authorized_keys: ["${KEY}"], sudo: true, groups: [adm], password_hash: "$6$salt$hash"}
network:
  ethernets:
    - {mac: "52:54:00:12:34:56", dhcp4: true}
user_data: |
  #cloud-config
  runcmd: [[touch, /root/hello]]
report: {url: "http://10.0.2.2:8080/", token: s3cret-token}
`)
const NOW = new Date('2024-11-25T12:00:00Z')

const text = (files: SeedFile[], path: string): string => {
  const f = files.find((x) => x.path === path)
  assert.ok(f, `no ${path} in ${files.map((x) => x.path).join(', ')}`)
  return new TextDecoder().decode(f.bytes)
}
// PyYAML (cloud-init) reads YAML 1.1.
const yaml11 = (s: string): unknown => parse(s, { version: '1.1' })

test('seedFiles() writes the NoCloud layout: meta-data, user-data, vendor-data, network-config, hwimage.json', () => {
  const layout = seedFiles(SEED, { now: NOW })
  assert.equal(layout.format, 'nocloud')
  assert.equal(layout.label, 'CIDATA')
  assert.deepEqual(
    layout.files.map((f) => f.path),
    ['meta-data', 'user-data', 'vendor-data', 'network-config', 'hwimage.json'],
  )
  assert.deepEqual(yaml11(text(layout.files, 'meta-data')), {
    'instance-id': 'iid-metal-01',
    'local-hostname': 'metal-01.example.net',
    'public-keys': [KEY],
  })
  assert.match(text(layout.files, 'vendor-data'), /^Content-Type: multipart\/mixed/)
  assert.match(text(layout.files, 'vendor-data'), /filename="hwimage-first-boot"/)
  assert.deepEqual((yaml11(text(layout.files, 'network-config')) as { config: unknown[] }).config[0], {
    type: 'physical',
    name: 'nic0',
    mac_address: '52:54:00:12:34:56',
    subnets: [{ type: 'dhcp4' }],
  })
})

test('seedFiles() quotes MAC addresses so that YAML 1.1 does not read them as base-60 numbers', () => {
  const nc = text(seedFiles(SEED).files, 'network-config')
  assert.match(nc, /mac_address: "52:54:00:12:34:56"/)
})

test('seedFiles() writes network config version 2 when asked', () => {
  const nc = yaml11(text(seedFiles(SEED, { networkVersion: 2 }).files, 'network-config')) as Record<string, unknown>
  assert.equal(nc.version, 2)
  assert.deepEqual(nc.ethernets, {
    nic0: { match: { macaddress: '52:54:00:12:34:56' }, 'set-name': 'nic0', dhcp4: true },
  })
})

test('seedFiles() makes a fresh UUID instance-id for every call when the seed has none', () => {
  const seed = parseSeed('hostname: a\n')
  const a = seedFiles(seed).instanceId
  const b = seedFiles(seed).instanceId
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.notEqual(a, b)
  assert.equal(seedFiles(seed, { instanceId: 'fixed' }).instanceId, 'fixed')
})

test('seedFiles() writes an empty user-data and no optional files for a bare seed', () => {
  const layout = seedFiles(parseSeed(''), { instanceId: 'i-1' })
  assert.deepEqual(
    layout.files.map((f) => f.path),
    ['meta-data', 'user-data', 'hwimage.json'],
  )
  assert.equal(text(layout.files, 'user-data'), '')
  assert.deepEqual(yaml11(text(layout.files, 'meta-data')), { 'instance-id': 'i-1' })
})

test('seedFiles() records the contract, every file digest and the install report in hwimage.json, and no secrets', () => {
  const installReport = {
    image: { name: 'debian-12', sha256: 'ab'.repeat(32) },
    target: { path: '/dev/sda', logicalSectorSize: 512 },
    time: NOW.toISOString(),
  }
  const layout = seedFiles(SEED, { now: NOW, installReport, networkReason: 'eni: test' })
  const manifestText = text(layout.files, 'hwimage.json')
  const manifest = JSON.parse(manifestText)
  assert.equal(manifest.contract, CONTRACT_VERSION)
  assert.equal(manifest.contract, 'hwimage-seed/1')
  assert.equal(manifest.instance_id, 'iid-metal-01')
  assert.equal(manifest.created, '2024-11-25T12:00:00.000Z')
  assert.deepEqual(manifest.install, installReport)
  assert.deepEqual(manifest.network_config, { form: 'cloud-init network config version 1', reason: 'eni: test' })
  const others = layout.files.filter((f) => f.path !== 'hwimage.json')
  assert.deepEqual(
    Object.keys(manifest.files),
    others.map((f) => f.path),
  )
  for (const f of others) {
    assert.deepEqual(manifest.files[f.path], {
      sha256: createHash('sha256').update(f.bytes).digest('hex'),
      size: f.bytes.length,
    })
  }
  assert.ok(!manifestText.includes('s3cret-token'))
  assert.ok(!manifestText.includes('$6$salt$hash'))
})

test('seedFiles() writes the config-drive layout under openstack/latest with uuid as the instance-id', () => {
  const layout = seedFiles(SEED, { format: 'configdrive', now: NOW })
  assert.equal(layout.label, 'config-2')
  assert.deepEqual(
    layout.files.map((f) => f.path),
    [
      'openstack/latest/meta_data.json',
      'openstack/latest/user_data',
      'openstack/latest/network_data.json',
      'openstack/latest/vendor_data2.json',
      'hwimage.json',
    ],
  )
  assert.deepEqual(JSON.parse(text(layout.files, 'openstack/latest/meta_data.json')), {
    uuid: 'iid-metal-01',
    hostname: 'metal-01.example.net',
    name: 'metal-01',
    public_keys: { 'key-0': KEY },
    launch_index: 0,
  })
  const vendor = JSON.parse(text(layout.files, 'openstack/latest/vendor_data2.json'))
  assert.deepEqual(Object.keys(vendor), ['cloud-init'])
  assert.match(vendor['cloud-init'], /^Content-Type: multipart\/mixed/)
  const script = Buffer.from(
    /filename="hwimage-first-boot"\n\n([A-Za-z0-9+/=\n]+)/.exec(vendor['cloud-init'])![1]!,
    'base64',
  ).toString('utf8')
  assert.match(script, /^#!\/usr\/bin\/python3\n/)
  assert.match(script, /\\"label\\":\\"config-2\\"/)
  assert.equal(
    JSON.parse(text(layout.files, 'openstack/latest/network_data.json')).links[0].ethernet_mac_address,
    '52:54:00:12:34:56',
  )
  assert.equal(text(layout.files, 'openstack/latest/user_data'), text(seedFiles(SEED).files, 'user-data'))
  assert.equal(JSON.parse(text(layout.files, 'hwimage.json')).format, 'configdrive')
})

test('seedFiles() keeps credentials and query strings of the report URL out of hwimage.json', () => {
  const seed = parseSeed('report: {url: "https://user:pw@reports.example.net:8443/in?token=abc#x"}\n')
  const manifest = JSON.parse(text(seedFiles(seed).files, 'hwimage.json'))
  assert.equal(manifest.report_url, 'https://reports.example.net:8443/in')
})

test('seedFiles() takes the format from the seed unless overridden', () => {
  const seed = parseSeed('format: configdrive\n')
  assert.equal(seedFiles(seed).format, 'configdrive')
  assert.equal(seedFiles(seed, { format: 'nocloud' }).format, 'nocloud')
})
