// What the deploy agent learns from the kernel command line that serve's boot answer
// wrote (src/serve/boot-answers.ts): hwimage.url= (serve's public URL), hwimage.mac=
// (the MAC it booted from), hwimage.token= (its one-time token), or hwimage.enlist=1
// with no token (the fallback GRUB config: the agent enlists itself). PXELINUX-style
// BOOTIF=01-aa-bb-cc-dd-ee-ff (ARP type 01, then the MAC) stands in for hwimage.mac=.
// Words are split on spaces as the kernel splits them (Documentation/admin-guide/
// kernel-parameters.rst: double quotes group a value with spaces).

import { UsageError } from '../errors.js'
import { normalizeMac } from '../serve/mac.js'

/** The agent's connection to serve. */
export interface AgentIdentity {
  url: string
  mac: string
  /** Absent when enlisting. */
  token?: string
  enlist: boolean
}

/** The kernel command line's words as key → value (the last of a repeated key wins). */
export function parseCmdline(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/(?:[^\s"]+|"[^"]*")+/g)) {
    const word = m[0].replace(/"/g, '')
    const eq = word.indexOf('=')
    out.set(eq < 0 ? word : word.slice(0, eq), eq < 0 ? '' : word.slice(eq + 1))
  }
  return out
}

/** The identity from a command line, with explicit values (flags) taking precedence; UsageError naming what is missing. */
export function agentIdentity(cmdline: string, given: Partial<Omit<AgentIdentity, 'enlist'>> = {}): AgentIdentity {
  const words = parseCmdline(cmdline)
  const url = (given.url ?? words.get('hwimage.url'))?.replace(/\/+$/, '')
  const bootif = words.get('BOOTIF')?.replace(/^01-/, '')
  const rawMac = given.mac ?? words.get('hwimage.mac') ?? bootif
  const token = given.token ?? words.get('hwimage.token')
  const enlist = words.get('hwimage.enlist') === '1'
  if (!url || !/^https?:\/\//.test(url))
    throw new UsageError(
      `Cannot start the deploy agent: no serve URL${url ? ` ("${url}" is not http:// or https://)` : ''}`,
      {
        hint: 'boot it with hwimage.url=http://SERVER:PORT on the kernel command line, or pass --url',
      },
    )
  const mac = rawMac === undefined ? undefined : normalizeMac(rawMac)
  if (!mac)
    throw new UsageError(`Cannot start the deploy agent: no MAC address${rawMac ? ` ("${rawMac}" is not one)` : ''}`, {
      hint: 'boot it with hwimage.mac=MAC or BOOTIF=01-…, or pass --mac',
    })
  if (!token && !enlist)
    throw new UsageError('Cannot start the deploy agent: no token', {
      hint: 'boot it with the hwimage.token= serve gave, or hwimage.enlist=1 to enlist; or pass --token',
    })
  return { url, mac, ...(token ? { token } : {}), enlist: !token && enlist }
}
