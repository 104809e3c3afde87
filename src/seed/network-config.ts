// The seed's network as cloud-init network config, version 1 or 2
// (cloud-init 22.4 docs: "Networking Config Version 1" / "Version 2").
//
// Which version an image gets follows the renderer its cloud-init will pick
// (detect-network-renderer.ts): version 1 for ifupdown (ENI) images, the Debian 12
// default; version 2 for netplan images, where cloud-init 22.4 passes it through to
// netplan nearly verbatim. NICs are matched by MAC and renamed to the seed's names in
// both, so the same seed yields the same interface names on either kind of image.

import { isIPv4 } from 'node:net'
import type { NetAddressing, SeedNetwork } from './seed-network.js'

/** Network config version 1: a list of typed entries. */
export interface NetworkConfigV1 {
  version: 1
  config: Record<string, unknown>[]
}

/** Network config version 2: netplan's schema. */
export interface NetworkConfigV2 {
  version: 2
  ethernets?: Record<string, Record<string, unknown>>
  bonds?: Record<string, Record<string, unknown>>
  vlans?: Record<string, Record<string, unknown>>
}

/** Renders version 1: physical entries matched by `mac_address`, then bonds, then VLANs. */
export function renderNetworkConfigV1(net: SeedNetwork): NetworkConfigV1 {
  const config: Record<string, unknown>[] = []
  const globalDns: { addresses: string[]; search: string[] } = { addresses: [], search: [] }
  const entry = (base: Record<string, unknown>, a: NetAddressing): Record<string, unknown> => {
    const out = { ...base }
    if (a.mtu !== undefined) out.mtu = a.mtu
    const subnets = subnetsV1(a)
    if (subnets.length > 0) out.subnets = subnets
    else if (a.nameservers) {
      globalDns.addresses.push(...a.nameservers.addresses)
      globalDns.search.push(...a.nameservers.search)
    }
    return out
  }
  for (const e of net.ethernets) config.push(entry({ type: 'physical', name: e.name, mac_address: e.mac }, e))
  for (const b of net.bonds) {
    const params: Record<string, unknown> = { 'bond-mode': b.mode, 'bond-miimon': b.miimon }
    if (b.lacpRate) params['bond-lacp-rate'] = b.lacpRate
    if (b.xmitHashPolicy) params['bond-xmit-hash-policy'] = b.xmitHashPolicy
    if (b.primary) params['bond-primary'] = net.ethernets.find((e) => e.mac === b.primary)!.name
    config.push(entry({ type: 'bond', name: b.name, bond_interfaces: b.members, params }, b))
  }
  for (const v of net.vlans) config.push(entry({ type: 'vlan', name: v.name, vlan_link: v.link, vlan_id: v.id }, v))
  if (globalDns.addresses.length > 0 || globalDns.search.length > 0) {
    config.push({
      type: 'nameserver',
      address: globalDns.addresses,
      ...(globalDns.search.length ? { search: globalDns.search } : {}),
    })
  }
  return { version: 1, config }
}

// DHCP first, then static addresses; the gateway and DNS ride on the first subnet of
// their family, the way cloud-init's own converters place them.
function subnetsV1(a: NetAddressing): Record<string, unknown>[] {
  const subnets: Record<string, unknown>[] = []
  if (a.dhcp4) subnets.push({ type: 'dhcp4' })
  if (a.dhcp6) subnets.push({ type: 'dhcp6' })
  let gw4 = a.gateway4
  let gw6 = a.gateway6
  for (const address of a.addresses) {
    const v4 = isIPv4(address.split('/')[0]!)
    const s: Record<string, unknown> = { type: v4 ? 'static' : 'static6', address }
    if (v4 && gw4) [s.gateway, gw4] = [gw4, undefined]
    if (!v4 && gw6) [s.gateway, gw6] = [gw6, undefined]
    subnets.push(s)
  }
  const first = subnets[0]
  if (first && a.nameservers) {
    if (a.nameservers.addresses.length) first.dns_nameservers = a.nameservers.addresses
    if (a.nameservers.search.length) first.dns_search = a.nameservers.search
  }
  return subnets
}

/** Renders version 2: ethernets matched by `macaddress` with `set-name`, bonds, VLANs. */
export function renderNetworkConfigV2(net: SeedNetwork): NetworkConfigV2 {
  const out: NetworkConfigV2 = { version: 2 }
  if (net.ethernets.length) {
    out.ethernets = Object.fromEntries(
      net.ethernets.map((e) => [e.name, { match: { macaddress: e.mac }, 'set-name': e.name, ...addressingV2(e) }]),
    )
  }
  if (net.bonds.length) {
    out.bonds = Object.fromEntries(
      net.bonds.map((b) => {
        const parameters: Record<string, unknown> = { mode: b.mode, 'mii-monitor-interval': b.miimon }
        if (b.lacpRate) parameters['lacp-rate'] = b.lacpRate
        if (b.xmitHashPolicy) parameters['transmit-hash-policy'] = b.xmitHashPolicy
        if (b.primary) parameters.primary = net.ethernets.find((e) => e.mac === b.primary)!.name
        return [b.name, { interfaces: b.members, parameters, ...addressingV2(b) }]
      }),
    )
  }
  if (net.vlans.length) {
    out.vlans = Object.fromEntries(net.vlans.map((v) => [v.name, { id: v.id, link: v.link, ...addressingV2(v) }]))
  }
  return out
}

// Default routes instead of gateway4/gateway6: netplan 0.106 (bookworm) warns that
// those are deprecated on every run; cloud-init 22.4 reads both forms.
function addressingV2(a: NetAddressing): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (a.dhcp4) out.dhcp4 = true
  if (a.dhcp6) out.dhcp6 = true
  if (a.addresses.length) out.addresses = a.addresses
  const routes = []
  if (a.gateway4) routes.push({ to: '0.0.0.0/0', via: a.gateway4 })
  if (a.gateway6) routes.push({ to: '::/0', via: a.gateway6 })
  if (routes.length) out.routes = routes
  if (a.nameservers) {
    const ns: Record<string, unknown> = {}
    if (a.nameservers.addresses.length) ns.addresses = a.nameservers.addresses
    if (a.nameservers.search.length) ns.search = a.nameservers.search
    out.nameservers = ns
  }
  if (a.mtu !== undefined) out.mtu = a.mtu
  return out
}
