import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InputError } from '../errors.js'
import { formatPath, parseSeed, SEED_VOLUME_BYTES, validateSeed, type Seed } from './seed-schema.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqExampleKeyOnly ops@example'

const GOOD = `
hostname: metal-01
fqdn: metal-01.example.net
users:
  - name: ops
    ssh_authorized_keys: ["${KEY}"]
    sudo: true
    groups: [adm]
network:
  ethernets:
    - mac: "52:54:00:12:34:56"
      dhcp4: true
user_data: |
  #cloud-config
  runcmd: [[touch, /root/hello]]
report:
  url: http://10.0.2.2:8080/
`

/** Parses and expects an InputError whose message names `field`. */
function rejects(yaml: string, field: string, message?: RegExp): InputError {
  let caught: unknown
  try {
    parseSeed(yaml, 'test.yaml')
  } catch (e) {
    caught = e
  }
  assert.ok(caught instanceof InputError, `expected InputError, got ${String(caught)}`)
  assert.equal(caught.code, 'SEED_INVALID')
  assert.equal(caught.exitCode, 2)
  assert.ok(
    caught.message.includes(`"test.yaml": ${field}: `),
    `message "${caught.message}" should name ${field} first`,
  )
  if (message) assert.match(caught.message, message)
  return caught
}

test('parseSeed() accepts the issue example and fills the defaults', () => {
  const seed: Seed = parseSeed(GOOD, 'good.yaml')
  assert.equal(seed.hostname, 'metal-01')
  assert.equal(seed.fqdn, 'metal-01.example.net')
  assert.equal(seed.format, 'nocloud')
  assert.equal(seed.cleanup, false)
  assert.equal(seed.instanceId, undefined)
  assert.deepEqual(seed.users, [
    { name: 'ops', sshAuthorizedKeys: [KEY], sudo: true, groups: ['adm'], shell: '/bin/bash' },
  ])
  assert.equal(seed.userData, '#cloud-config\nruncmd: [[touch, /root/hello]]\n')
  assert.deepEqual(seed.report, { url: 'http://10.0.2.2:8080/' })
  assert.deepEqual(seed.network?.ethernets, [
    { mac: '52:54:00:12:34:56', name: 'nic0', dhcp4: true, dhcp6: false, addresses: [] },
  ])
})

test('parseSeed() takes an empty document as an empty seed', () => {
  const seed = parseSeed('', 'empty.yaml')
  assert.deepEqual(seed, { users: [], format: 'nocloud', cleanup: false })
})

test('parseSeed() rejects an unknown key and names it', () => {
  rejects('hostname: a\nhostnme: b\n', 'hostnme', /unknown key/)
  rejects(
    'network:\n  ethernets:\n    - mac: "52:54:00:12:34:56"\n      dhcp: true\n',
    'network.ethernets[0].dhcp',
    /unknown key/,
  )
  rejects('users:\n  - name: ops\n    sudo_all: true\n', 'users[0].sudo_all', /unknown key/)
})

test('parseSeed() rejects a malformed MAC address and names the field', () => {
  rejects('network:\n  ethernets:\n    - mac: "52:54:00:12:34"\n', 'network.ethernets[0].mac', /MAC address/)
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", dhcp4: true}\n    - {mac: "52-54-00-12-34-57"}\n',
    'network.ethernets[1].mac',
    /MAC/,
  )
  rejects(
    'network:\n  bonds:\n    - {name: bond0, interfaces: ["zz:54:00:12:34:56"]}\n',
    'network.bonds[0].interfaces[0]',
    /MAC/,
  )
})

test('parseSeed() rejects a malformed IP address or CIDR and names the field', () => {
  const eth = (extra: string) => `network:\n  ethernets:\n    - mac: "52:54:00:12:34:56"\n      ${extra}\n`
  rejects(eth('addresses: ["10.0.0.5"]'), 'network.ethernets[0].addresses[0]', /prefix length/)
  rejects(eth('addresses: ["10.0.0.300/24"]'), 'network.ethernets[0].addresses[0]')
  rejects(eth('addresses: ["10.0.0.5/33"]'), 'network.ethernets[0].addresses[0]')
  rejects(eth('addresses: ["2001:db8::5/129"]'), 'network.ethernets[0].addresses[0]')
  rejects(eth('addresses: ["10.0.0.5/24"]\n      gateway4: 10.0.0'), 'network.ethernets[0].gateway4', /IPv4/)
  rejects(eth('addresses: ["10.0.0.5/24"]\n      gateway6: 10.0.0.1'), 'network.ethernets[0].gateway6', /IPv6/)
  rejects(eth('nameservers: [1.1.1]'), 'network.ethernets[0].nameservers[0]', /must be an IP address/)
  rejects(
    eth('nameservers: {addresses: [10.0.0.53], search: ["bad domain"]}'),
    'network.ethernets[0].nameservers.search[0]',
    /DNS name/,
  )
  rejects(eth('nameservers: 10.0.0.53'), 'network.ethernets[0].nameservers', /list of addresses/)
})

test('parseSeed() rejects a duplicate interface and names the second one', () => {
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", dhcp4: true}\n    - {mac: "52:54:00:12:34:56"}\n',
    'network.ethernets[1].mac',
    /duplicate interface "52:54:00:12:34:56" \(also network.ethernets\[0\]\)/,
  )
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", name: lan}\n    - {mac: "52:54:00:12:34:57", name: lan}\n',
    'network.ethernets[1].name',
    /duplicate interface name "lan"/,
  )
  rejects(
    'network:\n  bonds:\n    - {name: bond0, interfaces: ["52:54:00:12:34:56"]}\n    - {name: bond1, interfaces: ["52:54:00:12:34:56"]}\n',
    'network.bonds[1].interfaces[0]',
    /already in bond "bond0"/,
  )
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56"}\n  vlans:\n    - {id: 5, link: "52:54:00:12:34:56"}\n    - {id: 5, link: nic0, name: v5}\n',
    'network.vlans[1].id',
    /duplicate interface: VLAN 5 on "nic0"/,
  )
})

test('parseSeed() rejects user-data larger than the volume and names user_data', () => {
  // validateSeed() is parseSeed() after YAML parsing: 16 MiB of YAML would only slow the test.
  const check = (data: unknown, message: RegExp) =>
    assert.throws(
      () => validateSeed(data, 'test.yaml'),
      (e: unknown) =>
        e instanceof InputError && e.message.includes('"test.yaml": user_data: ') && message.test(e.message),
    )
  check({ user_data: 'x'.repeat(SEED_VOLUME_BYTES) }, /larger than the 16 MiB seed volume/)
  const half = 'y'.repeat(SEED_VOLUME_BYTES / 2)
  check({ user_data: half, vendor_data: half }, /together/)
  rejects('user_data: 5\n', 'user_data', /must be text .* or a mapping/)
})

test('parseSeed() rejects a user without a name', () => {
  rejects('users:\n  - sudo: true\n    groups: [adm]\n', 'users[0].name', /is required/)
  rejects('users:\n  - name: ops\n  - name: Bad Name\n', 'users[1].name', /login name/)
  rejects('users:\n  - name: ops\n  - name: ops\n', 'users[1].name', /duplicate user "ops"/)
})

test('parseSeed() refuses a plain password where a hash belongs', () => {
  rejects('users:\n  - name: ops\n    password_hash: hunter2\n', 'users[0].password_hash', /crypt\(3\) hash/)
  const seed = parseSeed('users:\n  - name: ops\n    password_hash: "$y$j9T$abc$def"\n')
  assert.equal(seed.users[0]!.passwordHash, '$y$j9T$abc$def')
})

test('parseSeed() rejects a key that is not one public key line', () => {
  rejects(
    'users:\n  - name: ops\n    ssh_authorized_keys: ["not a key"]\n',
    'users[0].ssh_authorized_keys[0]',
    /public key/,
  )
  const withOptions = `from="10.0.0.0/8",no-pty ${KEY}`
  assert.deepEqual(
    parseSeed(`users:\n  - name: ops\n    ssh_authorized_keys: ['${withOptions}']\n`).users[0]!.sshAuthorizedKeys,
    [withOptions],
  )
})

test('parseSeed() names the type a field should have', () => {
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", dhcp4: yes}\n',
    'network.ethernets[0].dhcp4',
    /must be a boolean, not string/,
  )
  rejects('users: {name: ops}\n', 'users', /must be a list/)
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", mtu: 1500.5}\n',
    'network.ethernets[0].mtu',
    /integer/,
  )
  rejects('format: iso\n', 'format', /nocloud, configdrive/)
})

test('parseSeed() reports YAML syntax errors and duplicate keys with their line', () => {
  assert.throws(
    () => parseSeed('hostname: [a\n', 'bad.yaml'),
    (e: unknown) => e instanceof InputError && /"bad.yaml": line \d+/.test(e.message),
  )
  assert.throws(
    () => parseSeed('hostname: a\nhostname: b\n', 'dup.yaml'),
    (e: unknown) => e instanceof InputError && /dup.yaml/.test(e.message) && /line 2/.test(e.message),
  )
  assert.throws(
    () => parseSeed('- a\n- b\n', 'list.yaml'),
    (e: unknown) => e instanceof InputError && /mapping at the top level/.test(e.message),
  )
})

test('parseSeed() checks host names, the FQDN and the instance-id', () => {
  rejects('hostname: metal_01\n', 'hostname', /host name/)
  rejects('hostname: metal-01\nfqdn: other.example.net\n', 'fqdn', /must start with the hostname "metal-01"/)
  rejects('instance_id: "../etc"\n', 'instance_id')
  assert.equal(parseSeed('fqdn: metal-02.example.net\n').hostname, 'metal-02')
})

test('parseSeed() checks the report URL', () => {
  rejects('report: {url: "ftp://x/"}\n', 'report.url', /http/)
  rejects('report: {}\n', 'report.url', /is required/)
})

test('parseSeed() names bond members by their ethernet entry or nic<N>, and refuses addresses on them', () => {
  const seed = parseSeed(`
network:
  ethernets:
    - {mac: "52:54:00:00:00:01", name: eno1}
  bonds:
    - name: bond0
      interfaces: ["52:54:00:00:00:01", "52:54:00:00:00:02"]
      mode: active-backup
      primary: "52:54:00:00:00:02"
      dhcp4: true
  vlans:
    - {id: 101, link: bond0, addresses: ["10.1.0.5/24"], gateway4: 10.1.0.1}
`)
  assert.deepEqual(seed.network!.bonds[0]!.members, ['eno1', 'nic1'])
  assert.equal(seed.network!.ethernets[1]!.bond, 'bond0')
  assert.equal(seed.network!.vlans[0]!.name, 'bond0.101')
  assert.equal(seed.network!.vlans[0]!.linkMac, '52:54:00:00:00:01')
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:00:00:01", dhcp4: true}\n  bonds:\n    - {name: bond0, interfaces: ["52:54:00:00:00:01"]}\n',
    'network.ethernets[0]',
    /member of bond "bond0"/,
  )
  rejects(
    'network:\n  bonds:\n    - {name: b0, interfaces: ["52:54:00:00:00:01"], lacp_rate: fast}\n',
    'network.bonds[0].lacp_rate',
    /802.3ad/,
  )
  rejects(
    'network:\n  bonds:\n    - {name: b0, interfaces: ["52:54:00:00:00:01"], primary: "52:54:00:00:00:09"}\n',
    'network.bonds[0].primary',
    /not one of/,
  )
})

test('parseSeed() checks VLAN links and gateways', () => {
  rejects('network:\n  vlans:\n    - {id: 7, link: bond9}\n', 'network.vlans[0].link', /not the MAC or name/)
  rejects('network:\n  vlans:\n    - {id: 4095, link: x}\n', 'network.vlans[0].id', /1 to 4094/)
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", dhcp4: true, gateway4: 10.0.0.1}\n',
    'network.ethernets[0].gateway4',
    /needs an IPv4 address/,
  )
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:00:00:01", addresses: ["10.0.0.5/24"], gateway4: 10.0.0.1}\n    - {mac: "52:54:00:00:00:02", addresses: ["10.1.0.5/24"], gateway4: 10.1.0.1}\n',
    'network.ethernets[1].gateway4',
    /second default gateway \(first at network.ethernets\[0\].gateway4\)/,
  )
  rejects(
    'network:\n  ethernets:\n    - {mac: "52:54:00:00:00:01", name: verylongname1}\n  vlans:\n    - {id: 1000, link: verylongname1}\n',
    'network.vlans[0].name',
    /longer than 15/,
  )
})

test('parseSeed() turns a user_data mapping into a #cloud-config document', () => {
  const seed = parseSeed('user_data:\n  runcmd: [[touch, /x]]\n  packages: [jq]\n')
  assert.equal(seed.userData, '#cloud-config\nruncmd:\n  - - touch\n    - /x\npackages:\n  - jq\n')
})

test('parseSeed() lists every problem, the first in the message', () => {
  const e = rejects('hostname: "bad host"\nusers:\n  - {}\n', 'hostname')
  const problems = (e as InputError & { problems: { path: (string | number)[] }[] }).problems
  assert.deepEqual(
    problems.map((p) => formatPath(p.path)),
    ['hostname', 'users[0].name'],
  )
})

test('formatPath() writes paths the way the seed file spells them', () => {
  assert.equal(formatPath(['network', 'ethernets', 1, 'mac']), 'network.ethernets[1].mac')
  assert.equal(formatPath([]), '(top level)')
})
