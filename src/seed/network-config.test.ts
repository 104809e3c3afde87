import assert from 'node:assert/strict'
import { test } from 'node:test'
import { renderNetworkConfigV1, renderNetworkConfigV2 } from './network-config.js'
import { parseSeed } from './seed-schema.js'

const NET = parseSeed(`
network:
  ethernets:
    - mac: "52:54:00:12:34:56"
      dhcp4: true
    - mac: "52:54:00:AA:00:02"
      name: lan1
      addresses: ["10.0.0.5/24", "2001:db8::5/64"]
      gateway4: 10.0.0.1
      gateway6: "2001:db8::1"
      nameservers: {addresses: [10.0.0.53], search: [example.net]}
      mtu: 9000
  bonds:
    - name: bond0
      interfaces: ["52:54:00:aa:00:10", "52:54:00:aa:00:11"]
      mode: 802.3ad
      lacp_rate: fast
      xmit_hash_policy: layer3+4
  vlans:
    - id: 101
      link: bond0
      addresses: ["192.168.101.5/24"]
`).network!

test('renderNetworkConfigV1() matches NICs by mac_address on physical entries and names them', () => {
  const v1 = renderNetworkConfigV1(NET)
  assert.equal(v1.version, 1)
  assert.deepEqual(v1.config[0], {
    type: 'physical',
    name: 'nic0',
    mac_address: '52:54:00:12:34:56',
    subnets: [{ type: 'dhcp4' }],
  })
  assert.deepEqual(v1.config[1], {
    type: 'physical',
    name: 'lan1',
    mac_address: '52:54:00:aa:00:02',
    mtu: 9000,
    subnets: [
      {
        type: 'static',
        address: '10.0.0.5/24',
        gateway: '10.0.0.1',
        dns_nameservers: ['10.0.0.53'],
        dns_search: ['example.net'],
      },
      { type: 'static6', address: '2001:db8::5/64', gateway: '2001:db8::1' },
    ],
  })
})

test('renderNetworkConfigV1() writes bond members without subnets, the bond with bond_interfaces and params', () => {
  const v1 = renderNetworkConfigV1(NET)
  assert.deepEqual(v1.config[2], { type: 'physical', name: 'nic2', mac_address: '52:54:00:aa:00:10' })
  assert.deepEqual(v1.config[3], { type: 'physical', name: 'nic3', mac_address: '52:54:00:aa:00:11' })
  assert.deepEqual(v1.config[4], {
    type: 'bond',
    name: 'bond0',
    bond_interfaces: ['nic2', 'nic3'],
    params: {
      'bond-mode': '802.3ad',
      'bond-miimon': 100,
      'bond-lacp-rate': 'fast',
      'bond-xmit-hash-policy': 'layer3+4',
    },
  })
})

test('renderNetworkConfigV1() writes a VLAN as type vlan with vlan_link and vlan_id', () => {
  const v1 = renderNetworkConfigV1(NET)
  assert.deepEqual(v1.config[5], {
    type: 'vlan',
    name: 'bond0.101',
    vlan_link: 'bond0',
    vlan_id: 101,
    subnets: [{ type: 'static', address: '192.168.101.5/24' }],
  })
  assert.equal(v1.config.length, 6)
})

test('renderNetworkConfigV1() puts nameservers of an interface without subnets in a nameserver entry', () => {
  const net = parseSeed('network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", nameservers: [1.1.1.1]}\n').network!
  assert.deepEqual(renderNetworkConfigV1(net).config.at(-1), { type: 'nameserver', address: ['1.1.1.1'] })
})

test('renderNetworkConfigV1() names the primary member of an active-backup bond', () => {
  const net = parseSeed(
    'network:\n  bonds:\n    - {name: b0, mode: active-backup, interfaces: ["52:54:00:00:00:01", "52:54:00:00:00:02"], primary: "52:54:00:00:00:02", dhcp4: true}\n',
  ).network!
  const bond = renderNetworkConfigV1(net).config[2] as { params: Record<string, unknown>; subnets: unknown }
  assert.equal(bond.params['bond-primary'], 'nic1')
  assert.deepEqual(bond.subnets, [{ type: 'dhcp4' }])
})

test('renderNetworkConfigV2() matches ethernets by macaddress and sets their names', () => {
  const v2 = renderNetworkConfigV2(NET)
  assert.equal(v2.version, 2)
  assert.deepEqual(v2.ethernets!.nic0, { match: { macaddress: '52:54:00:12:34:56' }, 'set-name': 'nic0', dhcp4: true })
  assert.deepEqual(v2.ethernets!.lan1, {
    match: { macaddress: '52:54:00:aa:00:02' },
    'set-name': 'lan1',
    addresses: ['10.0.0.5/24', '2001:db8::5/64'],
    routes: [
      { to: '0.0.0.0/0', via: '10.0.0.1' },
      { to: '::/0', via: '2001:db8::1' },
    ],
    nameservers: { addresses: ['10.0.0.53'], search: ['example.net'] },
    mtu: 9000,
  })
  assert.deepEqual(v2.ethernets!.nic2, { match: { macaddress: '52:54:00:aa:00:10' }, 'set-name': 'nic2' })
})

test('renderNetworkConfigV2() writes bonds with netplan parameter names and VLANs with id and link', () => {
  const v2 = renderNetworkConfigV2(NET)
  assert.deepEqual(v2.bonds, {
    bond0: {
      interfaces: ['nic2', 'nic3'],
      parameters: {
        mode: '802.3ad',
        'mii-monitor-interval': 100,
        'lacp-rate': 'fast',
        'transmit-hash-policy': 'layer3+4',
      },
    },
  })
  assert.deepEqual(v2.vlans, { 'bond0.101': { id: 101, link: 'bond0', addresses: ['192.168.101.5/24'] } })
})

test('renderNetworkConfigV2() leaves out empty sections', () => {
  const net = parseSeed('network:\n  ethernets:\n    - {mac: "52:54:00:12:34:56", dhcp6: true}\n').network!
  assert.deepEqual(renderNetworkConfigV2(net), {
    version: 2,
    ethernets: { nic0: { match: { macaddress: '52:54:00:12:34:56' }, 'set-name': 'nic0', dhcp6: true } },
  })
})
