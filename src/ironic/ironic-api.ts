// The two calls the agent makes to Ironic's API (ironic/api/controllers/v1/ramdisk.py):
//   GET  /v1/lookup?addresses=MAC,MAC     → { node: {uuid, properties, instance_info,
//                                            driver_internal_info}, config: {agent_token, heartbeat_timeout, …} }
//   POST /v1/heartbeat/{uuid}              { callback_url, agent_token, agent_version } → 202
// API version 1.68: ramdisk endpoints (1.22), agent_version in heartbeats (1.36), the agent
// token (1.62; below it lookup hands out no token). Lookup answers 404 until the node is in
// a state that allows it (deploying, wait call-back, cleaning, …).

export const IRONIC_API_VERSION = '1.68'
/** The ironic-python-agent version this agent claims to speak (Ironic gates features on it). */
export const AGENT_VERSION = '9.4.1'

export interface LookupResult {
  node: {
    uuid: string
    properties?: Record<string, unknown>
    instance_info?: Record<string, unknown>
    driver_internal_info?: Record<string, unknown>
  }
  config: { agent_token?: string; heartbeat_timeout?: number; [k: string]: unknown }
}

/** Ironic answered with an error (status, faultstring). */
export class IronicApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

type Fetch = typeof fetch

async function errorOf(res: Response, what: string): Promise<IronicApiError> {
  const text = await res.text()
  let fault = text
  try {
    const body = JSON.parse(text) as { error_message?: unknown; faultstring?: unknown }
    const em = typeof body.error_message === 'string' ? JSON.parse(body.error_message) : body.error_message
    fault = String((em as { faultstring?: unknown })?.faultstring ?? body.faultstring ?? text)
  } catch {}
  return new IronicApiError(res.status, `${what}: HTTP ${res.status} ${fault.slice(0, 300)}`)
}

export class IronicClient {
  constructor(
    private readonly apiUrl: string,
    private readonly fetchFn: Fetch = fetch,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { 'X-OpenStack-Ironic-API-Version': IRONIC_API_VERSION, Accept: 'application/json', ...extra }
  }

  /** The node with one of `macs` (lower case, colons). */
  async lookup(macs: readonly string[]): Promise<LookupResult> {
    const url = `${this.apiUrl}/v1/lookup?addresses=${encodeURIComponent(macs.join(','))}`
    const res = await this.fetchFn(url, { headers: this.headers() })
    if (!res.ok) throw await errorOf(res, `lookup ${macs.join(',')}`)
    const body = (await res.json()) as LookupResult
    if (!body?.node?.uuid) throw new IronicApiError(res.status, 'lookup: the answer names no node uuid')
    return body
  }

  async heartbeat(nodeUuid: string, callbackUrl: string, token: string): Promise<void> {
    const res = await this.fetchFn(`${this.apiUrl}/v1/heartbeat/${encodeURIComponent(nodeUuid)}`, {
      method: 'POST',
      headers: this.headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ callback_url: callbackUrl, agent_token: token, agent_version: AGENT_VERSION }),
    })
    if (res.status !== 202 && !res.ok) throw await errorOf(res, `heartbeat ${nodeUuid}`)
  }
}
