// The seed's network, resolved: every NIC matched by MAC gets a name, bonds and VLANs
// point at names, and the combinations cloud-init or ifupdown would reject are
// reported here with the field path instead of failing on first boot.

import { isIPv4, isIPv6 } from 'node:net'
import type { RawSeed, SeedProblem } from './seed-schema.js'

/** Addressing shared by ethernets, bonds and VLANs (netplan's names). */
export interface NetAddressing {
  dhcp4: boolean
  dhcp6: boolean
  /** Addresses with prefix: "10.0.0.5/24", "2001:db8::5/64". */
  addresses: string[]
  gateway4?: string
  gateway6?: string
  nameservers?: { addresses: string[]; search: string[] }
  mtu?: number
}

/** A NIC matched by MAC. */
export interface SeedEthernet extends NetAddressing {
  mac: string
  /** The name the NIC gets on first boot: the seed's, or `nic<N>`. */
  name: string
  /** The bond this NIC is enslaved to. */
  bond?: string
}

/** A Linux bond over NICs. */
export interface SeedBond extends NetAddressing {
  name: string
  /** Member MACs, in the seed's order. */
  interfaces: string[]
  /** Member interface names, in the same order. */
  members: string[]
  mode: string
  miimon: number
  lacpRate?: 'slow' | 'fast'
  xmitHashPolicy?: string
  /** The primary member's MAC (active-backup, balance-tlb, balance-alb). */
  primary?: string
}

/** An 802.1Q VLAN on an ethernet or a bond. */
export interface SeedVlan extends NetAddressing {
  name: string
  id: number
  /** The name of the interface it rides on. */
  link: string
  /** The MAC the VLAN interface inherits from its link (first member for a bond). */
  linkMac: string
}

/** The resolved network: ethernets include bond members the seed did not list. */
export interface SeedNetwork {
  ethernets: SeedEthernet[]
  bonds: SeedBond[]
  vlans: SeedVlan[]
}

type RawNetwork = NonNullable<RawSeed['network']>
type RawAddressing = Pick<
  RawNetwork['ethernets'][number],
  'dhcp4' | 'dhcp6' | 'addresses' | 'gateway4' | 'gateway6' | 'nameservers' | 'mtu'
>

const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i
const IFNAME_MAX = 15

/** Resolves names and references of a schema-checked network; pushes problems with their paths. */
export function resolveNetwork(raw: RawNetwork, problems: SeedProblem[]): SeedNetwork {
  const at = (...p: (string | number)[]) => ['network', ...p]
  const ethernets: SeedEthernet[] = []
  const names: { name: string; path: (string | number)[] }[] = []
  const byMac = new Map<string, { eth: SeedEthernet; index: number }>()

  raw.ethernets.forEach((e, i) => {
    const prev = byMac.get(e.mac)
    if (prev) {
      problems.push({
        path: at('ethernets', i, 'mac'),
        message: `duplicate interface "${e.mac}" (also network.ethernets[${prev.index}])`,
      })
      return
    }
    const eth: SeedEthernet = { ...addressing(e), mac: e.mac, name: e.name ?? `nic${ethernets.length}` }
    ethernets.push(eth)
    names.push({ name: eth.name, path: at('ethernets', i, e.name !== undefined ? 'name' : 'mac') })
    byMac.set(e.mac, { eth, index: i })
  })

  const bonds: SeedBond[] = []
  const memberOf = new Map<string, string>()
  raw.bonds.forEach((b, i) => {
    const members: string[] = []
    b.interfaces.forEach((m, k) => {
      const other = memberOf.get(m)
      if (other !== undefined) {
        problems.push({
          path: at('bonds', i, 'interfaces', k),
          message: `duplicate interface "${m}" (already in bond "${other}")`,
        })
        return
      }
      memberOf.set(m, b.name)
      let found = byMac.get(m)
      if (!found) {
        const eth: SeedEthernet = { ...addressing({}), mac: m, name: `nic${ethernets.length}` }
        ethernets.push(eth)
        names.push({ name: eth.name, path: at('bonds', i, 'interfaces', k) })
        found = { eth, index: -1 }
        byMac.set(m, found)
      } else if (hasAddressing(found.eth)) {
        problems.push({
          path: at('ethernets', found.index),
          message: `is a member of bond "${b.name}" and cannot have addresses, DHCP, gateways or nameservers of its own`,
        })
      }
      found.eth.bond = b.name
      members.push(found.eth.name)
    })
    const mode = b.mode
    if (b.lacp_rate !== undefined && mode !== '802.3ad') {
      problems.push({ path: at('bonds', i, 'lacp_rate'), message: `only applies to mode 802.3ad, not ${mode}` })
    }
    if (b.xmit_hash_policy !== undefined && !['balance-xor', '802.3ad', 'balance-tlb'].includes(mode)) {
      problems.push({
        path: at('bonds', i, 'xmit_hash_policy'),
        message: `only applies to modes balance-xor, 802.3ad and balance-tlb, not ${mode}`,
      })
    }
    if (b.primary !== undefined) {
      if (!['active-backup', 'balance-tlb', 'balance-alb'].includes(mode)) {
        problems.push({
          path: at('bonds', i, 'primary'),
          message: `only applies to modes active-backup, balance-tlb and balance-alb, not ${mode}`,
        })
      } else if (!b.interfaces.includes(b.primary)) {
        problems.push({
          path: at('bonds', i, 'primary'),
          message: `"${b.primary}" is not one of the bond's interfaces`,
        })
      }
    }
    names.push({ name: b.name, path: at('bonds', i, 'name') })
    bonds.push({
      ...addressing(b),
      name: b.name,
      interfaces: b.interfaces.filter((m, k) => b.interfaces.indexOf(m) === k),
      members,
      mode,
      miimon: b.miimon ?? 100,
      ...(b.lacp_rate !== undefined ? { lacpRate: b.lacp_rate } : {}),
      ...(b.xmit_hash_policy !== undefined ? { xmitHashPolicy: b.xmit_hash_policy } : {}),
      ...(b.primary !== undefined ? { primary: b.primary } : {}),
    })
  })

  const vlans: SeedVlan[] = []
  const vlanKeys = new Map<string, number>()
  raw.vlans.forEach((v, i) => {
    let link: string | undefined
    let linkMac: string | undefined
    if (MAC_RE.test(v.link)) {
      const found = byMac.get(v.link.toLowerCase())
      if (found?.eth.bond) {
        problems.push({
          path: at('vlans', i, 'link'),
          message: `"${v.link}" is a member of bond "${found.eth.bond}": put the VLAN on the bond`,
        })
        return
      }
      if (found) [link, linkMac] = [found.eth.name, found.eth.mac]
    } else {
      const eth = ethernets.find((e) => e.name === v.link)
      const bond = bonds.find((b) => b.name === v.link)
      if (eth?.bond) {
        problems.push({
          path: at('vlans', i, 'link'),
          message: `"${v.link}" is a member of bond "${eth.bond}": put the VLAN on the bond`,
        })
        return
      }
      if (eth) [link, linkMac] = [eth.name, eth.mac]
      else if (bond) [link, linkMac] = [bond.name, bond.interfaces[0] ?? '']
    }
    if (link === undefined || linkMac === undefined) {
      problems.push({
        path: at('vlans', i, 'link'),
        message: `"${v.link}" is not the MAC or name of an ethernet, nor the name of a bond`,
      })
      return
    }
    const key = `${link}/${v.id}`
    const prev = vlanKeys.get(key)
    if (prev !== undefined) {
      problems.push({
        path: at('vlans', i, 'id'),
        message: `duplicate interface: VLAN ${v.id} on "${link}" (also network.vlans[${prev}])`,
      })
      return
    }
    vlanKeys.set(key, i)
    const name = v.name ?? `${link}.${v.id}`
    if (name.length > IFNAME_MAX) {
      problems.push({
        path: at('vlans', i, 'name'),
        message: `the default name "${name}" is longer than ${IFNAME_MAX} characters: give one`,
      })
      return
    }
    names.push({ name, path: at('vlans', i, v.name !== undefined ? 'name' : 'id') })
    vlans.push({ ...addressing(v), name, id: v.id, link, linkMac })
  })

  checkNames(names, problems)
  checkGateways(raw, problems)
  return { ethernets, bonds, vlans }
}

/** Whether an interface carries IP configuration of its own (a bond member must not). */
export function hasAddressing(a: NetAddressing): boolean {
  return (
    a.dhcp4 ||
    a.dhcp6 ||
    a.addresses.length > 0 ||
    a.gateway4 !== undefined ||
    a.gateway6 !== undefined ||
    a.nameservers !== undefined
  )
}

function addressing(a: Partial<RawAddressing>): NetAddressing {
  const out: NetAddressing = { dhcp4: a.dhcp4 ?? false, dhcp6: a.dhcp6 ?? false, addresses: a.addresses ?? [] }
  if (a.gateway4 !== undefined) out.gateway4 = a.gateway4
  if (a.gateway6 !== undefined) out.gateway6 = a.gateway6
  if (a.nameservers !== undefined) {
    out.nameservers = Array.isArray(a.nameservers) ? { addresses: a.nameservers, search: [] } : a.nameservers
  }
  if (a.mtu !== undefined) out.mtu = a.mtu
  return out
}

function checkNames(names: { name: string; path: (string | number)[] }[], problems: SeedProblem[]): void {
  const seen = new Map<string, string>()
  for (const { name, path } of names) {
    const prev = seen.get(name)
    if (prev !== undefined) problems.push({ path, message: `duplicate interface name "${name}" (also ${prev})` })
    else seen.set(name, formatNetPath(path))
  }
}

function formatNetPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

function checkGateways(raw: RawNetwork, problems: SeedProblem[]): void {
  const first: Record<'gateway4' | 'gateway6', string | undefined> = { gateway4: undefined, gateway6: undefined }
  const kinds: [string, readonly RawAddressing[]][] = [
    ['ethernets', raw.ethernets],
    ['bonds', raw.bonds],
    ['vlans', raw.vlans],
  ]
  for (const [kind, list] of kinds) {
    list.forEach((a: RawAddressing, i: number) => {
      for (const [key, isFamily] of [
        ['gateway4', isIPv4],
        ['gateway6', isIPv6],
      ] as const) {
        if (a[key] === undefined) continue
        const path = ['network', kind, i, key]
        if (!a.addresses.some((c) => isFamily(c.split('/')[0]!))) {
          problems.push({
            path,
            message: `needs an ${key === 'gateway4' ? 'IPv4' : 'IPv6'} address in addresses on the same interface`,
          })
        }
        // ifupdown adds each gateway as a default route: the second one fails to come up.
        if (first[key] !== undefined)
          problems.push({ path, message: `is a second default gateway (first at ${first[key]})` })
        else first[key] = `network.${kind}[${i}].${key}`
      }
    })
  }
}
