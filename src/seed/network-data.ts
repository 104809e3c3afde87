// The seed's network as OpenStack `network_data.json` (Nova's metadata format, as
// Ironic writes it into config drives), read by cloud-init 22.4's ConfigDrive
// datasource through `openstack.convert_net_json()`.
//
// cloud-init honours a link's `name` for NICs, but names bonds itself ("bond0",
// "bond1" … in link order) and VLANs "<link name>.<vlan id>". Seed names that differ
// come back as warnings; a derived VLAN name longer than 15 characters is an error.

import { isIPv4 } from 'node:net'
import { InputError } from '../errors.js'
import type { NetAddressing, SeedNetwork } from './seed-network.js'

/** OpenStack network_data.json: links, networks, services. */
export interface NetworkData {
  links: Record<string, unknown>[]
  networks: Record<string, unknown>[]
  services: { type: 'dns'; address: string }[]
}

/** network_data.json plus the names cloud-init will give that differ from the seed's. */
export interface RenderedNetworkData {
  data: NetworkData
  warnings: string[]
}

/** Renders network_data.json; throws InputError when cloud-init would derive an invalid VLAN name. */
export function renderNetworkData(net: SeedNetwork): RenderedNetworkData {
  const links: Record<string, unknown>[] = []
  const networks: Record<string, unknown>[] = []
  const services: NetworkData['services'] = []
  const warnings: string[] = []
  const cloudInitName = new Map<string, string>()

  const addNetworks = (link: string, a: NetAddressing) => {
    const mine: Record<string, unknown>[] = []
    const add = (n: Record<string, unknown>) =>
      mine.push({ id: `network${networks.length + mine.length}`, link, network_id: `${link}-${mine.length}`, ...n })
    if (a.dhcp4) add({ type: 'ipv4_dhcp' })
    if (a.dhcp6) add({ type: 'ipv6_dhcp' })
    let gw4 = a.gateway4
    let gw6 = a.gateway6
    for (const cidr of a.addresses) {
      const [ip, prefix] = cidr.split('/') as [string, string]
      // `gateway` rather than Nova's default route in `routes`: cloud-init 22.4 renders
      // routes for ifupdown as `post-up route add …`, which needs net-tools (absent
      // from minimal images, and the failure is hidden by `|| true`).
      if (isIPv4(ip)) {
        add({
          type: 'ipv4',
          ip_address: ip,
          netmask: ipv4Netmask(Number(prefix)),
          routes: [],
          ...(gw4 ? { gateway: gw4 } : {}),
        })
        gw4 = undefined
      } else {
        add({
          type: 'ipv6',
          ip_address: ip,
          netmask: ipv6Netmask(Number(prefix)),
          routes: [],
          ...(gw6 ? { gateway: gw6 } : {}),
        })
        gw6 = undefined
      }
    }
    const dns = a.nameservers
    if (dns && mine[0]) {
      // dns_nameservers/dns_search are what cloud-init reads; `services` is Nova's spelling.
      if (dns.addresses.length) mine[0].dns_nameservers = dns.addresses
      if (dns.search.length) mine[0].dns_search = dns.search
      mine[0].services = dns.addresses.map((address) => ({ type: 'dns', address }))
    } else if (dns) {
      for (const address of dns.addresses) services.push({ type: 'dns', address })
    }
    networks.push(...mine)
  }

  for (const e of net.ethernets) {
    links.push({
      id: e.name,
      name: e.name,
      type: 'phy',
      ethernet_mac_address: e.mac,
      ...(e.mtu !== undefined ? { mtu: e.mtu } : {}),
    })
    cloudInitName.set(e.name, e.name)
    addNetworks(e.name, e)
  }
  net.bonds.forEach((b, i) => {
    const derived = `bond${i}`
    cloudInitName.set(b.name, derived)
    if (derived !== b.name)
      warnings.push(`config-drive: cloud-init names bond "${b.name}" "${derived}" (it numbers bonds in order)`)
    const link: Record<string, unknown> = {
      id: b.name,
      type: 'bond',
      bond_links: b.members,
      bond_mode: b.mode,
      bond_miimon: b.miimon,
      ethernet_mac_address: b.interfaces[0],
    }
    if (b.xmitHashPolicy) link.bond_xmit_hash_policy = b.xmitHashPolicy
    if (b.lacpRate) link.bond_lacp_rate = b.lacpRate
    if (b.primary) link.bond_primary = net.ethernets.find((e) => e.mac === b.primary)!.name
    if (b.mtu !== undefined) link.mtu = b.mtu
    links.push(link)
    addNetworks(b.name, b)
  })
  net.vlans.forEach((v, i) => {
    const derived = `${cloudInitName.get(v.link) ?? v.link}.${v.id}`
    if (derived.length > 15) {
      throw new InputError(
        'SEED_INVALID',
        `Cannot use seed: network.vlans[${i}]: config-drive makes cloud-init name this VLAN "${derived}", longer than 15 characters`,
        { hint: `give network interface "${v.link}" a shorter name, or use format: nocloud` },
      )
    }
    if (derived !== v.name) warnings.push(`config-drive: cloud-init names VLAN "${v.name}" "${derived}" (<link>.<id>)`)
    links.push({
      id: v.name,
      type: 'vlan',
      vlan_link: v.link,
      vlan_id: v.id,
      vlan_mac_address: v.linkMac,
      ...(v.mtu !== undefined ? { mtu: v.mtu } : {}),
    })
    addNetworks(v.name, v)
  })
  return { data: { links, networks, services }, warnings }
}

/** The dotted IPv4 netmask of a prefix length: 24 → 255.255.255.0. */
export function ipv4Netmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.')
}

/** The IPv6 netmask of a prefix length, compressed: 64 → ffff:ffff:ffff:ffff::. */
export function ipv6Netmask(prefix: number): string {
  const groups: string[] = []
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, prefix - i * 16))
    groups.push((bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff).toString(16))
  }
  const firstZero = groups.indexOf('0')
  if (firstZero === -1) return groups.join(':')
  const head = groups.slice(0, firstZero).join(':')
  return `${head}::`
}
