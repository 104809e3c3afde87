// The deploy agent's side of serve's machine API (docs/api.md): JSON over HTTP with the
// machine's one-time token as `Authorization: Bearer`. A refused request (4xx) is not
// retried; a connection failure, a timeout or a 5xx is retried with exponential backoff
// and full jitter (so a hundred agents that lost serve at once do not come back at once),
// because the deploy environment's network may still be settling and serve may be
// restarting. Every POST carries an Idempotency-Key, "<this client's random id>:<sequence>",
// the same on each retry, which serve stores with the change: a POST whose answer was lost
// (serve killed after its commit) is not applied a second time. The token is never part
// of an error message.

import { randomUUID } from 'node:crypto'

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
  /** Attempts for a connection failure, a timeout or a 5xx (default 6), the first delay at most this, doubling (default 1000 ms), never more than maxDelayMs (default 15 s). */
  attempts?: number
  retryDelayMs?: number
  maxDelayMs?: number
  /** One attempt's limit (default 20 s; serve's API routes answer within 15 s). */
  timeoutMs?: number
}

/** One machine's API client. */
export class ServeClient {
  /** This client's part of its requests' Idempotency-Keys. */
  readonly runId = randomUUID()
  private seq = 0
  private progressSeq = 0
  /** Attempts made after the first, over every request (how often serve was not there). */
  retries = 0

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

  /** One attempt only: progress is sent again a moment later anyway, and the latest is what counts. */
  progress(p: { stage: string; done: number; total?: number; rate?: number; resumes?: number }): Promise<unknown> {
    // Numbered, so that serve keeps the latest when an earlier report arrives late.
    return this.json('POST', this.path('progress'), { ...p, run: this.runId, seq: ++this.progressSeq }, 1)
  }

  event(kind: string, fields: Record<string, unknown>): Promise<unknown> {
    return this.json('POST', this.path('events'), { kind, fields })
  }

  /** The seed YAML at `url` (serve's seed route: the token is what opens it). */
  async seed(url: string): Promise<string> {
    return (await this.request('GET', url)).text()
  }

  /** The first-boot report, as the installed system sends it (tests and simulated agents). */
  report(r: Record<string, unknown>): Promise<unknown> {
    return this.json('POST', this.path('report'), r)
  }

  private async json(method: string, url: string, body?: unknown, attempts?: number): Promise<unknown> {
    return (await this.request(method, url, body, attempts)).json()
  }

  private async request(method: string, url: string, body?: unknown, attemptsAt?: number): Promise<Response> {
    const attempts = attemptsAt ?? this.opts.attempts ?? 6
    let delay = this.opts.retryDelayMs ?? 1000
    const what = `${method} ${new URL(url).pathname}`
    // The same key on every attempt: that is what lets serve recognise a retry.
    const key = method === 'POST' ? `"${this.runId}:${++this.seq}"` : undefined
    for (let i = 1; ; i++) {
      let res: Response | undefined
      let failure: string
      const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 20_000)
      try {
        res = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(key ? { 'idempotency-key': key } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: this.opts.signal ? AbortSignal.any([this.opts.signal, timeout]) : timeout,
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
        failure = timeout.aborted
          ? `no answer within ${(this.opts.timeoutMs ?? 20_000) / 1000} s`
          : (cause?.code ?? cause?.message ?? (e as Error).message)
      }
      if (i >= attempts)
        throw new HwimageError('NETWORK', `Cannot ${what} at ${new URL(url).host}: ${failure} (${attempts} attempts)`, {
          hint: 'check that serve runs and that this machine reaches its public_url',
        })
      this.retries++
      // Full jitter (a random wait up to the backoff): agents cut off together spread out.
      await sleep(Math.random() * delay, this.opts.signal)
      delay = Math.min(delay * 2, this.opts.maxDelayMs ?? 15_000)
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new InterruptedError('Interrupted: waiting to retry'))
    const t = setTimeout(resolve, ms)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t)
        reject(new InterruptedError('Interrupted: waiting to retry'))
      },
      { once: true },
    )
  })
}
