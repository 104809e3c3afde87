// The deploy agent's progress reports to serve, at most one per interval (default 500 ms:
// "at most a few events per second", network deploy issue): each report is the latest
// progress when the interval has passed, with the rate since the previous report of the
// same stage. A report that fails is logged, never fatal: progress is informative, and
// the install must not stop because serve restarted.

/** A progress update from the installer. */
export interface Progress {
  stage: string
  done: number
  total?: number
  resumes?: number
}

/** Rate-limited progress reports through `send`. */
export class ProgressPoster {
  private latest: Progress | undefined
  private dirty = false
  private lastAt = Number.NEGATIVE_INFINITY
  private last: { stage: string; done: number; at: number } | undefined
  private timer: NodeJS.Timeout | undefined
  private inflight: Promise<void> | undefined
  /** Reports sent. */
  sent = 0

  constructor(
    private readonly send: (p: Progress & { rate?: number }) => Promise<unknown>,
    private readonly opts: { intervalMs?: number; onError?: (e: unknown) => void; now?: () => number } = {},
  ) {}

  private now(): number {
    return this.opts.now?.() ?? performance.now()
  }

  /** Takes the latest progress; a report goes out when the interval allows. */
  update(p: Progress): void {
    this.latest = p
    this.dirty = true
    if (!this.timer && !this.inflight) this.schedule()
  }

  private schedule(): void {
    const wait = Math.max(0, this.lastAt + (this.opts.intervalMs ?? 500) - this.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.post()
    }, wait)
  }

  private post(): void {
    if (!this.dirty || !this.latest) return
    this.dirty = false
    const p = this.latest
    const at = this.now()
    this.lastAt = at
    const rate =
      this.last && this.last.stage === p.stage && at > this.last.at
        ? Math.round(((p.done - this.last.done) * 1000) / (at - this.last.at))
        : undefined
    this.last = { stage: p.stage, done: p.done, at }
    this.sent++
    this.inflight = this.send({ ...p, ...(rate !== undefined && rate >= 0 ? { rate } : {}) })
      .then(
        () => undefined,
        (e: unknown) => this.opts.onError?.(e),
      )
      .finally(() => {
        this.inflight = undefined
        if (this.dirty && !this.timer) this.schedule()
      })
  }

  /** Sends what is pending now (still no sooner than the interval allows) and waits for it. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.inflight) {
        await this.inflight
        continue
      }
      if (!this.dirty) break
      if (this.timer) {
        clearTimeout(this.timer)
        this.timer = undefined
      }
      const wait = this.lastAt + (this.opts.intervalMs ?? 500) - this.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      this.post()
    }
  }

  /** Drops anything pending (after a failure). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.dirty = false
  }
}
