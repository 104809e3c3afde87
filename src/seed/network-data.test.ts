import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InputError } from '../errors.js'
import { ipv4Netmask, ipv6Netmask, renderNetworkData } from './network-data.js'
import { parseSeed } from './seed-schema.js'

test('renderNetworkData() writes NICs as phy links with their MAC and name, networks with netmask and gateway', () => {
  const net = parseSeed(`
network:
  ethernets:
    - {mac: "52:54:00:12:34:56", dhcp4: true}
    - mac: "52:54:00:aa:00:02"
      addresses: ["10.0.0.5/24", "2001:db8::5/64"]
      gateway4: 10.0.0.1
      nameservers: {addresses: [10.0.0.53], search: [example.net]}
      mtu: 9000
`).network!
  const { data, warnings } = renderNetworkData(net)
  assert.deepEqual(warnings, [])
  assert.deepEqual(data.links, [
    { id: 'nic0', name: 'nic0', type: 'phy', ethernet_mac_address: '52:54:00:12:34:56' },
    { id: 'nic1', name: 'nic1', type: 'phy', ethernet_mac_address: '52:54:00:aa:00:02', mtu: 9000 },
  ])
  assert.deepEqual(data.networks[0], { id: 'network0', link: 'nic0', network_id: 'nic0-0', type: 'ipv4_dhcp' })
  assert.deepEqual(data.networks[1], {
    id: 'network1',
    link: 'nic1',
    network_id: 'nic1-0',
    type: 'ipv4',
    ip_address: '10.0.0.5',
    netmask: '255.255.255.0',
    routes: [],
    gateway: '10.0.0.1',
    dns_nameservers: ['10.0.0.53'],
    dns_search: ['example.net'],
    services: [{ type: 'dns', address: '10.0.0.53' }],
  })
  assert.deepEqual(data.networks[2], {
    id: 'network2',
    link: 'nic1',
    network_id: 'nic1-1',
    type: 'ipv6',
    ip_address: '2001:db8::5',
    netmask: 'ffff:ffff:ffff:ffff::',
    routes: [],
  })
  assert.deepEqual(data.services, [])
})

test('renderNetworkData() writes bonds with bond_links and VLANs with vlan_link and the MAC they inherit', () => {
  const net = parseSeed(`
network:
  bonds:
    - {name: bond0, interfaces: ["52:54:00:aa:00:10", "52:54:00:aa:00:11"], mode: 802.3ad, xmit_hash_policy: layer3+4}
  vlans:
    - {id: 101, link: bond0, dhcp4: true}
`).network!
  const { data, warnings } = renderNetworkData(net)
  assert.deepEqual(warnings, [])
  assert.deepEqual(data.links[2], {
    id: 'bond0',
    type: 'bond',
    bond_links: ['nic0', 'nic1'],
    bond_mode: '802.3ad',
    bond_miimon: 100,
    ethernet_mac_address: '52:54:00:aa:00:10',
    bond_xmit_hash_policy: 'layer3+4',
  })
  assert.deepEqual(data.links[3], {
    id: 'bond0.101',
    type: 'vlan',
    vlan_link: 'bond0',
    vlan_id: 101,
    vlan_mac_address: '52:54:00:aa:00:10',
  })
  assert.deepEqual(data.networks, [{ id: 'network0', link: 'bond0.101', network_id: 'bond0.101-0', type: 'ipv4_dhcp' }])
})

test('renderNetworkData() warns when cloud-init will rename a bond or a VLAN', () => {
  const net = parseSeed(`
network:
  bonds:
    - {name: uplink, interfaces: ["52:54:00:aa:00:10"]}
  vlans:
    - {id: 7, link: uplink, name: mgmt}
`).network!
  const { warnings } = renderNetworkData(net)
  assert.equal(warnings.length, 2)
  assert.match(warnings[0]!, /bond "uplink" "bond0"/)
  assert.match(warnings[1]!, /VLAN "mgmt" "bond0.7"/)
})

test('renderNetworkData() refuses a VLAN whose name cloud-init would make too long', () => {
  const net = parseSeed(
    'network:\n  ethernets:\n    - {mac: "52:54:00:aa:00:10", name: longname123}\n  vlans:\n    - {id: 4000, link: longname123, name: v4000}\n',
  ).network!
  assert.throws(
    () => renderNetworkData(net),
    (e: unknown) =>
      e instanceof InputError && /network.vlans\[0\]/.test(e.message) && /"longname123.4000"/.test(e.message),
  )
})

test('ipv4Netmask() and ipv6Netmask() turn prefix lengths into masks', () => {
  assert.equal(ipv4Netmask(24), '255.255.255.0')
  assert.equal(ipv4Netmask(0), '0.0.0.0')
  assert.equal(ipv4Netmask(32), '255.255.255.255')
  assert.equal(ipv4Netmask(19), '255.255.224.0')
  assert.equal(ipv6Netmask(64), 'ffff:ffff:ffff:ffff::')
  assert.equal(ipv6Netmask(56), 'ffff:ffff:ffff:ff00::')
  assert.equal(ipv6Netmask(128), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
  assert.equal(ipv6Netmask(0), '::')
})
