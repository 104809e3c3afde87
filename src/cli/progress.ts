// What long operations show while they run: a progress bar on a TTY, JSON-lines
// events with --json, plain lines otherwise. Always on stderr: stdout is for results.

import { formatBytes, formatSeconds } from '../units.js'

/** A progress update from a long operation. */
export interface Progress {
  stage: string
  done: number
  /** Total when known. */
  total?: number
  /** A download resumed this many times so far. */
  resumes?: number
}

/** Emits events and renders progress for one CLI invocation. */
export class Reporter {
  private lastDraw = 0
  private started = Date.now()
  private stageStart = Date.now()
  private stage = ''
  private barShown = false
  readonly tty: boolean

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly json: boolean,
  ) {
    this.tty = !json && Boolean(stream.isTTY)
  }

  /** A JSON-lines event (with --json) — e.g. start, verified, done. */
  event(name: string, fields: Record<string, unknown> = {}): void {
    if (this.json) this.stream.write(JSON.stringify({ event: name, time: new Date().toISOString(), ...fields }) + '\n')
  }

  /** A human log line (suppressed with --json). */
  log(message: string): void {
    if (this.json) return
    this.clearBar()
    this.stream.write(message + '\n')
  }

  /** A warning: a human line, or a `warning` event. */
  warn(message: string): void {
    if (this.json) this.event('warning', { message })
    else this.log(`warning: ${message}`)
  }

  /** Progress: a bar on a TTY at most 10 times a second; a `progress` event at most once a second with --json. */
  progress = (p: Progress): void => {
    const now = Date.now()
    if (p.stage !== this.stage) {
      this.stage = p.stage
      this.stageStart = now
    }
    const final = p.total !== undefined && p.done >= p.total
    if (this.json) {
      if (now - this.lastDraw < 1000 && !final) return
      this.lastDraw = now
      this.event('progress', {
        stage: p.stage,
        done: p.done,
        total: p.total,
        ...(p.resumes ? { resumes: p.resumes } : {}),
      })
      return
    }
    if (!this.tty) return
    if (now - this.lastDraw < 100 && !final) return
    this.lastDraw = now
    const seconds = Math.max(0.001, (now - this.stageStart) / 1000)
    const rate = p.done / seconds
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 60))
    let line = `${p.stage.padEnd(10)} ${formatBytes(p.done)}`
    if (p.total) {
      const frac = Math.min(1, p.done / p.total)
      const fill = Math.round(frac * width)
      const eta = rate > 0 ? (p.total - p.done) / rate : 0
      line = `${p.stage.padEnd(10)} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(p.done)}/${formatBytes(p.total)} ${formatBytes(rate)}/s ETA ${formatSeconds(eta)}`
    } else {
      line += ` ${formatBytes(rate)}/s`
    }
    if (p.resumes) line += ` (resumed ${p.resumes}×)`
    this.stream.write(`\r\x1b[K${line}`)
    this.barShown = true
  }

  /** Seconds since this reporter was made. */
  elapsed(): number {
    return (Date.now() - this.started) / 1000
  }

  /** Ends the bar's line, if one is shown. */
  clearBar(): void {
    if (this.barShown) {
      this.stream.write('\r\x1b[K')
      this.barShown = false
    }
  }
}

export { formatBytes, formatSeconds } from '../units.js'
