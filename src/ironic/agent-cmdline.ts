// Agent mode of the deploy environment: the kernel command line Ironic's PXE configuration
// writes (ironic/common/pxe_utils.py build_extra_pxe_options: [pxe]kernel_append_params, the
// node's driver_info kernel_append_params, then ipa-api-url=…, ipa-global-request-id=…) and
// the ironic-python-agent options an operator adds there: ipa-advertise-host= and
// ipa-advertise-port= (the address Ironic reaches the agent at; behind NAT, the forwarded
// one), ipa-listen-port=, BOOTIF= (the MAC it booted from).

import { parseCmdline } from '../deploy/agent-cmdline.js'
import { UsageError } from '../errors.js'
import { normalizeMac } from '../serve/mac.js'

/** IPA's default API port. */
export const IPA_PORT = 9999

export interface IronicAgentConfig {
  /** Ironic's API, without a trailing slash. */
  apiUrl: string
  listenPort: number
  /** The host and port in callback_url; host undefined: the address of the booted NIC. */
  advertiseHost?: string
  advertisePort: number
  bootMac?: string
  globalRequestId?: string
}

/** True when the command line asks for agent mode (ipa-api-url=). */
export function isIronicCmdline(cmdline: string): boolean {
  return parseCmdline(cmdline).has('ipa-api-url')
}

function port(words: Map<string, string>, key: string, dflt: number): number {
  const v = words.get(key)
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`Cannot start the Ironic agent: ${key}=${v} is not a port (1-65535)`)
  return n
}

/** The agent's configuration; UsageError naming what is wrong. */
export function ironicAgentConfig(cmdline: string): IronicAgentConfig {
  const words = parseCmdline(cmdline)
  const apiUrl = words.get('ipa-api-url')?.replace(/\/+$/, '')
  if (!apiUrl || !/^https?:\/\/[^/]/.test(apiUrl))
    throw new UsageError(
      `Cannot start the Ironic agent: ${apiUrl ? `ipa-api-url=${apiUrl} is not an http:// or https:// URL` : 'no ipa-api-url= on the kernel command line'}`,
      { hint: "Ironic's PXE boot writes it from [service_catalog]endpoint_override (lab/ironic/ironic.conf.in)" },
    )
  const listenPort = port(words, 'ipa-listen-port', IPA_PORT)
  const advertisePort = port(words, 'ipa-advertise-port', listenPort)
  const bootif = words.get('BOOTIF')?.replace(/^01-/, '')
  const mac = bootif ? normalizeMac(bootif) : undefined
  const host = words.get('ipa-advertise-host')
  const rid = words.get('ipa-global-request-id')
  return {
    apiUrl,
    listenPort,
    advertisePort,
    ...(host ? { advertiseHost: host } : {}),
    ...(mac ? { bootMac: mac } : {}),
    ...(rid ? { globalRequestId: rid } : {}),
  }
}
