// The dashboard's live view: Server-Sent Events (HTML Living Standard §9.2, "Server-sent
// events", text/event-stream) fed by the store's changes. Three kinds of message:
//
//   hello            {lastEventId}: sent first; the page (re)loads what it shows, then applies what follows
//   machine          {mac, machine, phases}: a machine changed (its record without inventory and reports)
//   machine-deleted  {mac}
//   event            a recorded event, with `id:` its database id (Last-Event-ID on reconnect)
//
// Bounded per client: a change marks the machine dirty (a set, at most one entry per
// machine) and the client remembers the last event id it was sent; messages are made from
// the store only when the client's socket has drained, a page at a time. A slow reader
// therefore costs one page in its socket buffer plus its dirty set, however many changes
// it misses: it gets the latest state of each machine, and the events from the database.
// A client whose buffer still passes `maxBufferedBytes` is dropped (EventSource reconnects).

import type { ServerResponse } from 'node:http'
import { type DeployPhases, deployPhases } from './deploy-phases.js'
import type { MachineRecord, MachineStore } from './state/store.js'

/** Options of EventStream. */
export interface EventStreamOptions {
  /** A comment line this often keeps proxies and the route's idle timeout from closing a quiet stream (default 15 s). */
  heartbeatMs?: number
  /** Machines and events written per page (default 200 each). */
  pageSize?: number
  /** A client whose unsent bytes pass this is dropped (default 4 MiB). */
  maxBufferedBytes?: number
  /** On reconnect, events older than the latest minus this many are not replayed (default 1000). */
  maxReplay?: number
  /** The reconnection delay EventSource is told (`retry:`, default 3000 ms). */
  retryMs?: number
}

/** A machine as the stream sends it: the listing's fields, without the inventory and the reports. */
export type MachineSummary = Omit<MachineRecord, 'inventory' | 'installReport' | 'firstBootReport'>

/** The record without its large parts. */
export function machineSummary(m: MachineRecord): MachineSummary {
  const { inventory: _i, installReport: _r, firstBootReport: _f, ...rest } = m
  return rest
}

/** One message in text/event-stream framing: `event:`, `id:`, the JSON on one `data:` line, a blank line. */
export function sseMessage(m: { event: string; data: unknown; id?: number }): string {
  // JSON.stringify escapes CR and LF inside strings, so the data is one line (§9.2.6: a line break ends a field).
  return `event: ${m.event}\n${m.id !== undefined ? `id: ${m.id}\n` : ''}data: ${JSON.stringify(m.data)}\n\n`
}

interface Client {
  res: ServerResponse
  dirty: Set<string>
  lastEventId: number
  /** Waiting for 'drain' before writing more. */
  blocked: boolean
  done: () => void
}

/** Every open stream of a serve, fed by its store. */
export class EventStream {
  private readonly clients = new Set<Client>()
  private readonly heartbeat: NodeJS.Timeout
  private scheduled: NodeJS.Immediate | undefined
  private closed = false
  private readonly o: Required<EventStreamOptions>
  /**
   * Each machine's deploy phases, with the id of its latest event they were made from: a
   * machine's progress changes it many times a second and adds no event, and reading and
   * parsing its events for every message was 7% of serve's CPU samples with 1,000 agents.
   */
  private readonly phases = new Map<string, { lastEventId: number; phases: DeployPhases }>()

  constructor(
    private readonly store: MachineStore,
    opts: EventStreamOptions = {},
  ) {
    this.o = {
      heartbeatMs: opts.heartbeatMs ?? 15_000,
      pageSize: opts.pageSize ?? 200,
      maxBufferedBytes: opts.maxBufferedBytes ?? 4 * 1024 * 1024,
      maxReplay: opts.maxReplay ?? 1000,
      retryMs: opts.retryMs ?? 3000,
    }
    store.onChange((mac) => {
      if (this.clients.size === 0) return
      for (const c of this.clients) c.dirty.add(mac)
      this.schedule()
    })
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) if (!c.blocked) this.write(c, ': keep-alive\n\n')
    }, this.o.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Open streams. */
  get size(): number {
    return this.clients.size
  }

  /** Each open stream's unsent bytes, machines waiting to be sent, and whether it waits for its socket to drain. */
  stats(): Array<{ bufferedBytes: number; dirty: number; blocked: boolean; lastEventId: number }> {
    return [...this.clients].map((c) => ({
      bufferedBytes: c.res.writableLength,
      dirty: c.dirty.size,
      blocked: c.blocked,
      lastEventId: c.lastEventId,
    }))
  }

  /**
   * Streams to `res` until the client goes away or close() ends it; resolves then.
   * `lastEventId` (the Last-Event-ID header of a reconnect) replays the events after it.
   */
  attach(res: ServerResponse, opts: { lastEventId?: number } = {}): Promise<void> {
    if (this.closed) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('serve is stopping\n')
      return Promise.resolve()
    }
    const latest = this.store.lastEventId()
    const from =
      opts.lastEventId !== undefined && Number.isSafeInteger(opts.lastEventId) && opts.lastEventId >= 0
        ? Math.min(latest, Math.max(opts.lastEventId, latest - this.o.maxReplay))
        : latest
    return new Promise<void>((resolve) => {
      const c: Client = { res, dirty: new Set(), lastEventId: from, blocked: false, done: resolve }
      this.clients.add(c)
      res.once('close', () => this.drop(c))
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      })
      res.flushHeaders()
      this.write(c, `retry: ${this.o.retryMs}\n` + sseMessage({ event: 'hello', data: { lastEventId: latest } }))
      if (from < latest) this.flush(c, new Map())
    })
  }

  /** Ends every stream (serve is stopping); later attach() calls answer 503. */
  close(): void {
    this.closed = true
    clearInterval(this.heartbeat)
    if (this.scheduled) clearImmediate(this.scheduled)
    for (const c of [...this.clients]) {
      c.res.end()
      this.drop(c)
    }
  }

  private drop(c: Client): void {
    if (!this.clients.delete(c)) return
    c.dirty.clear()
    c.done()
  }

  private schedule(): void {
    // Changes within one turn of the event loop (a transaction's change, the progress of many machines) go out together.
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined
      const made = new Map<string, string>()
      for (const c of [...this.clients]) if (!c.blocked) this.flush(c, made)
    })
  }

  /** Writes `text`; false when the socket's buffer is full (the client waits for 'drain'). */
  private write(c: Client, text: string): boolean {
    const ok = c.res.write(text)
    if (c.res.writableLength > this.o.maxBufferedBytes) {
      c.res.destroy()
      this.drop(c)
      return false
    }
    if (!ok && !c.blocked) {
      c.blocked = true
      c.res.once('drain', () => {
        c.blocked = false
        if (this.clients.has(c)) this.flush(c, new Map())
      })
    }
    return ok
  }

  /** Sends the client's dirty machines and the events it has not seen, a page at a time while its socket takes them. */
  private flush(c: Client, made: Map<string, string>): void {
    while (this.clients.has(c) && !c.blocked) {
      let wrote = 0
      for (const mac of c.dirty) {
        if (wrote >= this.o.pageSize) break
        c.dirty.delete(mac)
        wrote++
        if (!this.write(c, this.machineMessage(mac, made))) return
      }
      const events = this.store.eventsAfter(c.lastEventId, this.o.pageSize)
      for (const e of events) {
        c.lastEventId = e.id
        wrote++
        if (!this.write(c, sseMessage({ event: 'event', id: e.id, data: e }))) return
      }
      if (wrote === 0) return
    }
  }

  private machineMessage(mac: string, made: Map<string, string>): string {
    let text = made.get(mac)
    if (text === undefined) {
      const m = this.store.get(mac)
      text = m
        ? sseMessage({ event: 'machine', data: { mac, machine: machineSummary(m), phases: this.phasesOf(m) } })
        : sseMessage({ event: 'machine-deleted', data: { mac } })
      if (!m) this.phases.delete(mac)
      made.set(mac, text)
    }
    return text
  }

  /** The machine's deploy phases, made again only when it has a new event (the first-boot report is one). */
  private phasesOf(m: MachineRecord): DeployPhases {
    const lastEventId = this.store.lastEventIdOf(m.mac)
    const kept = this.phases.get(m.mac)
    if (kept?.lastEventId === lastEventId) return kept.phases
    const phases = deployPhases(m, this.store.events(m.mac))
    this.phases.set(m.mac, { lastEventId, phases })
    return phases
  }
}
