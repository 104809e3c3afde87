// The deploy agent's side of serve's machine API (docs/deploy.md, "API"): JSON over
// HTTP with the machine's one-time token as `Authorization: Bearer`. A refused request
// (4xx) is not retried; a connection failure or a 5xx is retried a few times, because
// the deploy environment's network may still be settling and serve may be restarting.
// The token is never part of an error message.

import { HwimageError, InterruptedError } from '../errors.js'
import type { DeployTask } from '../serve/deploy-task.js'
import type { Inventory } from './inventory-types.js'

/** serve answered with an error status. */
export class ServeRefusedError extends HwimageError {
  constructor(
    readonly status: number,
    message: string,
    hint?: string,
  ) {
    super('NETWORK', message, hint ? { hint } : {})
  }
}

/** Options of ServeClient. */
export interface ServeClientOptions {
  url: string
  mac: string
  token: string
  signal?: AbortSignal
  /** Attempts for a connection failure or a 5xx (default 4), with this first delay, doubling (default 1000 ms). */
  attempts?: number
  retryDelayMs?: number
}

/** One machine's API client. */
export class ServeClient {
  constructor(private readonly opts: ServeClientOptions) {}

  private path(what: string): string {
    return `${this.opts.url}/api/v1/machines/${this.opts.mac}/${what}`
  }

  /** Posts the inventory; serve answers the task. */
  inventory(inv: Inventory): Promise<DeployTask> {
    return this.json('POST', this.path('inventory'), inv) as Promise<DeployTask>
  }

  task(): Promise<DeployTask> {
    return this.json('GET', this.path('task')) as Promise<DeployTask>
  }

  progress(p: { stage: string; done: number; total?: number; rate?: number; resumes?: number }): Promise<unknown> {
    return this.json('POST', this.path('progress'), p)
  }

  event(kind: string, fields: Record<string, unknown>): Promise<unknown> {
    return this.json('POST', this.path('events'), { kind, fields })
  }

  /** The seed YAML at `url` (serve's seed route: the token is what opens it). */
  async seed(url: string): Promise<string> {
    return (await this.request('GET', url)).text()
  }

  private async json(method: string, url: string, body?: unknown): Promise<unknown> {
    return (await this.request(method, url, body)).json()
  }

  private async request(method: string, url: string, body?: unknown): Promise<Response> {
    const attempts = this.opts.attempts ?? 4
    let delay = this.opts.retryDelayMs ?? 1000
    const what = `${method} ${new URL(url).pathname}`
    for (let i = 1; ; i++) {
      let res: Response | undefined
      let failure: string
      try {
        res = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        })
        if (res.ok) return res
        const text = await res.text()
        let message = text.trim().slice(0, 500)
        let hint: string | undefined
        try {
          const e = (JSON.parse(text) as { error?: { message?: string; hint?: string } }).error
          if (e?.message) message = e.message
          hint = e?.hint
        } catch {}
        if (res.status < 500)
          throw new ServeRefusedError(res.status, `Cannot ${what}: serve answered ${res.status}: ${message}`, hint)
        failure = `serve answered ${res.status}: ${message}`
      } catch (e) {
        if (e instanceof ServeRefusedError) throw e
        if (this.opts.signal?.aborted) throw new InterruptedError(`Interrupted: ${what}`, { cause: e })
        const cause = (e as { cause?: { code?: string; message?: string } }).cause
        failure = cause?.code ?? cause?.message ?? (e as Error).message
      }
      if (i >= attempts)
        throw new HwimageError('NETWORK', `Cannot ${what} at ${new URL(url).host}: ${failure} (${attempts} attempts)`, {
          hint: 'check that serve runs and that this machine reaches its public_url',
        })
      await new Promise((r) => setTimeout(r, delay))
      delay *= 2
    }
  }
}

/** Asks serve for a token for an unknown MAC (`POST /api/v1/enlist`; only with unknown_macs: enlist). */
export async function enlistMachine(url: string, mac: string, signal?: AbortSignal): Promise<string> {
  const res = await fetch(`${url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mac }),
    ...(signal ? { signal } : {}),
  }).catch((e: unknown) => {
    throw new HwimageError('NETWORK', `Cannot enlist at ${new URL(url).host}: ${(e as Error).message}`, { cause: e })
  })
  if (!res.ok)
    throw new ServeRefusedError(
      res.status,
      `Cannot enlist ${mac}: serve answered ${res.status}`,
      res.status === 404 ? 'serve does not enlist unknown machines (unknown_macs: ignore)' : undefined,
    )
  return ((await res.json()) as { token: string }).token
}
