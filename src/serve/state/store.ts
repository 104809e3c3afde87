// Machine state of `hwimage serve`: one SQLite database (better-sqlite3) in the state
// directory, the only place routes read or change machines. Every change is one transaction
// (a savepoint of the turn's group commit, ./group-commit.ts), so a `kill -9` or a restart
// leaves the last committed state, and nothing is answered before it is on disk.
// Tokens are stored as SHA-256 digests (./tokens.ts).
// An agent's POSTs carry an Idempotency-Key (docs/api.md): the key is stored in the same
// transaction as the change it made, so a POST retried after a lost answer, a timeout or a
// serve restart is answered from the database and never applied twice.

import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type { Inventory } from '../../deploy/inventory-types.js'
import { HwimageError, InputError } from '../../errors.js'
import type { ConfiguredMachine } from '../config.js'
import { bootsDeployEnvironment, type MachineAction, nextState } from '../machine-states.js'
import { GroupCommitDb } from './group-commit.js'
import { type EventRow, type MachineEvent, type MachineRecord, type Row, toEvent, toRecord } from './record.js'
import { migrate } from './schema.js'
import { newToken, type TokenCheck, tokenDigest } from './tokens.js'

export type { MachineEvent, MachineRecord } from './record.js'
export { newToken, type TokenCheck, tokenDigest } from './tokens.js'

/** How long a request's Idempotency-Key is remembered (an agent retries within minutes). */
export const REQUEST_KEY_RETENTION_MS = 24 * 3600_000

/** applyOnce()'s outcome: applied now (with apply's value), or a retry of a request applied before. */
export type ApplyOnce<T> = { replayed: false; value: T } | { replayed: true }

/** What a boot request is answered with. */
export type BootDecision =
  | { action: 'deploy'; token: string; machine: MachineRecord }
  | { action: 'local'; machine: MachineRecord }
  | { action: 'ignore' }

/** Machines in SQLite. One instance per process; every method is one transaction. */
export class MachineStore {
  private readonly db: GroupCommitDb
  private readonly listeners: Array<(mac: string) => void> = []
  private keysSincePrune = 0
  /** Machines changed in the open batch: the listeners hear of them after its commit. */
  private readonly changedMacs = new Set<string>()

  private constructor(file: string) {
    this.db = new GroupCommitDb(file, () => {
      const macs = [...this.changedMacs]
      this.changedMacs.clear()
      return (ok) => {
        if (ok) for (const mac of macs) for (const l of this.listeners) l(mac)
      }
    })
  }

  /** The database file. */
  get file(): string {
    return this.db.file
  }

  /** Why the last batch failed to commit (for serve's log), or undefined. */
  get commitError(): Error | undefined {
    return this.db.commitError
  }

  /**
   * Calls `then(true)` once the changes made so far are on disk (at once when there are none
   * waiting), or `then(false)` when their batch could not be committed (it was rolled back).
   */
  afterCommit(then: (ok: boolean) => void): void {
    this.db.afterCommit(then)
  }

  /** Opens (or creates) STATE_DIR/serve.sqlite and brings its schema to the current version. */
  static open(stateDir: string): MachineStore {
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 })
      const store = new MachineStore(path.join(stateDir, 'serve.sqlite'))
      migrate(store.db)
      return store
    } catch (e) {
      if (e instanceof HwimageError) throw e
      throw new HwimageError('INTERNAL', `Cannot open the state database in "${stateDir}": ${(e as Error).message}`, {
        cause: e,
        hint: 'check that the state_dir is writable and not used by another serve',
      })
    }
  }

  private tx<T>(fn: () => T): T {
    return this.db.tx(fn)
  }

  /** Closes the database (the WAL is checkpointed). */
  close(): void {
    this.db.close()
  }

  /** Called with a MAC after each committed change to that machine. */
  onChange(listener: (mac: string) => void): void {
    this.listeners.push(listener)
  }

  private changed(mac: string): void {
    if (this.db.batchOpen) this.changedMacs.add(mac)
    else for (const l of this.listeners) l(mac)
  }

  /** Adds the config's machines that are not in the database; updates the assignment of those not yet deploying. */
  syncConfigured(machines: Iterable<ConfiguredMachine>): void {
    const touched: string[] = []
    this.tx(() => {
      for (const m of machines) {
        const row = this.row(m.mac)
        const now = new Date().toISOString()
        if (!row) {
          this.sql(
            "INSERT INTO machines (mac, name, state, image, seed_yaml, disk_hints, source, state_times, created, updated) VALUES (?, ?, 'new', ?, ?, ?, 'config', ?, ?, ?)",
          ).run(
            m.mac,
            m.name,
            m.image ?? null,
            m.seedYaml ?? null,
            JSON.stringify(m.diskHints),
            JSON.stringify({ new: now }),
            now,
            now,
          )
          this.event(m.mac, 'configured', { image: m.image ?? null })
          touched.push(m.mac)
        } else if (row.state === 'new' || row.state === 'enlisted') {
          this.sql(
            'UPDATE machines SET name = ?, image = ?, seed_yaml = ?, disk_hints = ?, updated = ? WHERE mac = ?',
          ).run(m.name, m.image ?? null, m.seedYaml ?? null, JSON.stringify(m.diskHints), now, m.mac)
          touched.push(m.mac)
        }
      }
    })
    for (const mac of touched) this.changed(mac)
  }

  /**
   * Runs `apply` (one of the record* methods) once per (MAC, Idempotency-Key): the key is
   * stored in the same transaction as apply's change, so a retry of a request that was
   * applied is "replayed" (nothing changes) even across a crash. No key: always applied.
   */
  applyOnce<T>(mac: string, key: string | undefined, route: string, apply: () => T): ApplyOnce<T> {
    if (key === undefined) return { replayed: false, value: apply() }
    const r = this.tx((): ApplyOnce<T> => {
      if (this.sql('SELECT 1 FROM agent_requests WHERE mac = ? AND key = ?').get(mac, key)) return { replayed: true }
      this.sql('INSERT INTO agent_requests (mac, key, route, time) VALUES (?, ?, ?, ?)').run(
        mac,
        key,
        route,
        new Date().toISOString(),
      )
      return { replayed: false, value: apply() }
    })
    if (++this.keysSincePrune >= 1000) this.pruneRequestKeys()
    return r
  }

  /** Forgets Idempotency-Keys older than REQUEST_KEY_RETENTION_MS (before `now`); returns how many. */
  pruneRequestKeys(now = Date.now()): number {
    this.keysSincePrune = 0
    const before = new Date(now - REQUEST_KEY_RETENTION_MS).toISOString()
    return this.sql('DELETE FROM agent_requests WHERE time < ?').run(before).changes
  }

  /** A machine, or undefined. */
  get(mac: string): MachineRecord | undefined {
    const row = this.row(mac)
    return row && toRecord(row)
  }

  /** Every machine, by MAC. */
  list(): MachineRecord[] {
    return (this.sql('SELECT * FROM machines ORDER BY mac').all() as Row[]).map(toRecord)
  }

  /** A machine's events, oldest first (the last `limit`). */
  events(mac: string, limit = 200): MachineEvent[] {
    const rows = this.sql(
      'SELECT * FROM (SELECT * FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
    ).all(mac, limit) as EventRow[]
    return rows.map(toEvent)
  }

  /** Events of every machine after the event `afterId`, oldest first, at most `limit` (the dashboard's stream). */
  eventsAfter(afterId: number, limit = 200): MachineEvent[] {
    return (this.sql('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as EventRow[]).map(
      toEvent,
    )
  }

  /** The id of a machine's latest event (0 when it has none). */
  lastEventIdOf(mac: string): number {
    return (this.sql('SELECT MAX(id) AS id FROM events WHERE mac = ?').get(mac) as { id: number | null }).id ?? 0
  }

  /** The id of the latest event (0 when there is none). */
  lastEventId(): number {
    return (this.sql('SELECT MAX(id) AS id FROM events').get() as { id: number | null }).id ?? 0
  }

  /** The seed YAML assigned to a machine (secret: served only with its token). */
  seedOf(mac: string): string | undefined {
    return this.row(mac)?.seed_yaml ?? undefined
  }

  /**
   * A boot request from firmware: creates an unknown MAC when enlisting, moves an assigned
   * new machine to deploying, and issues a token when the deploy environment is to boot.
   */
  boot(mac: string, unknownMacs: 'enlist' | 'ignore', via: string): BootDecision {
    const decision = this.tx((): BootDecision => {
      let row = this.row(mac)
      if (!row) {
        if (unknownMacs === 'ignore') return { action: 'ignore' }
        const now = new Date().toISOString()
        this.sql(
          "INSERT INTO machines (mac, name, state, source, state_times, created, updated) VALUES (?, ?, 'new', 'enlisted', ?, ?, ?)",
        ).run(mac, mac.replace(/:/g, ''), JSON.stringify({ new: now }), now, now)
        this.event(mac, 'enlisting', { via })
        row = this.row(mac)!
      }
      this.event(mac, 'boot', { via })
      if (!bootsDeployEnvironment(row.state)) return { action: 'local', machine: toRecord(row) }
      this.move(row, 'boot')
      const token = this.issue(mac, via)
      return { action: 'deploy', token, machine: toRecord(this.row(mac)!) }
    })
    if (decision.action !== 'ignore') this.changed(mac)
    return decision
  }

  /**
   * A MAC the deploy environment enlists itself (booted by the fallback GRUB config, which
   * has no token to give): a new machine and its first token, or undefined when the MAC is
   * already known (a known machine boots with its own config and token).
   */
  enlist(mac: string): string | undefined {
    const token = this.tx(() => {
      if (this.row(mac)) return undefined
      const now = new Date().toISOString()
      this.sql(
        "INSERT INTO machines (mac, name, state, source, state_times, created, updated) VALUES (?, ?, 'new', 'enlisted', ?, ?, ?)",
      ).run(mac, mac.replace(/:/g, ''), JSON.stringify({ new: now }), now, now)
      this.event(mac, 'enlisting', { via: 'enlist' })
      return this.issue(mac, 'enlist')
    })
    if (token) this.changed(mac)
    return token
  }

  /** A new token for a machine's current deploy (the TFTP tree's GRUB config holds one). */
  issueToken(mac: string, via: string): string {
    return this.tx(() => this.issue(mac, via))
  }

  private issue(mac: string, via: string): string {
    const row = this.row(mac)
    if (!row) throw new InputError('NOT_FOUND', `Cannot issue a token: no machine ${mac}`)
    const token = newToken()
    this.sql('INSERT INTO tokens (hash, mac, generation, via, issued) VALUES (?, ?, ?, ?, ?)').run(
      tokenDigest(token),
      mac,
      row.generation,
      via,
      new Date().toISOString(),
    )
    return token
  }

  /**
   * Whether `token` is one issued to this machine for its current deploy. Found by its digest
   * (the tokens table's primary key): scanning the machine's tokens and comparing each was a
   * sixteenth of serve's CPU with 1,000 agents, as the table has no index on mac. Looking a
   * digest up tells a timing observer nothing of a token, only of its SHA-256.
   */
  checkToken(mac: string, token: string | undefined): TokenCheck {
    if (!token) return 'missing'
    const hit = this.sql(
      'SELECT 1 FROM tokens t JOIN machines m ON m.mac = t.mac WHERE t.hash = ? AND t.mac = ? AND t.generation = m.generation',
    ).get(tokenDigest(token), mac)
    return hit ? 'ok' : 'wrong'
  }

  /** Stores the inventory the deploy environment sent. */
  recordInventory(mac: string, inventory: Inventory): MachineRecord {
    return this.change(mac, 'inventory', (row) => {
      this.sql('UPDATE machines SET inventory = ? WHERE mac = ?').run(JSON.stringify(inventory), mac)
      this.event(mac, 'inventory', {
        disks: inventory.disks.length,
        nics: inventory.nics.length,
        pci: inventory.pci.length,
        firmware: inventory.firmware,
        ...(inventory.uptimeSeconds !== undefined ? { uptimeSeconds: inventory.uptimeSeconds } : {}),
      })
      return row
    })
  }

  /**
   * Records the latest progress (and an event when the stage changes). A report numbered
   * (run, seq) before the stored one of the same run arrived late and is dropped.
   */
  recordProgress(
    mac: string,
    progress: { stage: string; run?: string; seq?: number; [k: string]: unknown },
  ): MachineRecord {
    return this.change(mac, undefined, (row) => {
      const last = row.progress
        ? (JSON.parse(row.progress) as { stage?: string; run?: string; seq?: number })
        : undefined
      if (
        last?.run !== undefined &&
        last.run === progress.run &&
        last.seq !== undefined &&
        progress.seq !== undefined &&
        progress.seq <= last.seq
      )
        return row
      this.sql('UPDATE machines SET progress = ? WHERE mac = ?').run(
        JSON.stringify({ ...progress, time: new Date().toISOString() }),
        mac,
      )
      if (last?.stage !== progress.stage) this.event(mac, 'stage', { stage: progress.stage })
      return row
    })
  }

  /** Records an event from the deploy environment; "installed" and "failed" move the machine. */
  recordEvent(mac: string, kind: string, fields: Record<string, unknown>): MachineRecord {
    const action: MachineAction | undefined =
      kind === 'installed' ? 'installed' : kind === 'failed' ? 'failed' : undefined
    return this.change(mac, action, (row) => {
      if (kind === 'installed')
        this.sql('UPDATE machines SET install_report = ?, error = NULL WHERE mac = ?').run(
          JSON.stringify(fields.report ?? null),
          mac,
        )
      if (kind === 'failed')
        this.sql('UPDATE machines SET error = ? WHERE mac = ?').run(
          JSON.stringify({
            code: fields.code ?? null,
            message: fields.message ?? null,
            logTail: fields.logTail ?? null,
          }),
          mac,
        )
      const { report: _report, ...rest } = fields
      this.event(mac, kind, rest)
      return row
    })
  }

  /** Stores the installed system's first-boot report: the machine is deployed. */
  recordFirstBoot(mac: string, report: unknown): MachineRecord {
    return this.change(mac, 'first-boot', (row) => {
      this.sql('UPDATE machines SET first_boot_report = ? WHERE mac = ?').run(JSON.stringify(report), mac)
      this.event(mac, 'first-boot', {})
      return row
    })
  }

  /** Assigns an image (and a seed, disk hints) to a machine; creates it when the MAC is new. */
  assign(mac: string, a: { image: string; seedYaml?: string; diskHints?: string[]; name?: string }): MachineRecord {
    const rec = this.tx(() => {
      if (!this.row(mac)) {
        const now = new Date().toISOString()
        this.sql(
          "INSERT INTO machines (mac, name, state, source, state_times, created, updated) VALUES (?, ?, 'new', 'api', ?, ?, ?)",
        ).run(mac, a.name ?? mac.replace(/:/g, ''), JSON.stringify({ new: now }), now, now)
      }
      const row = this.row(mac)!
      this.sql('UPDATE machines SET image = ?, seed_yaml = ?, disk_hints = ?, name = ? WHERE mac = ?').run(
        a.image,
        a.seedYaml ?? row.seed_yaml,
        JSON.stringify(a.diskHints ?? JSON.parse(row.disk_hints)),
        a.name ?? row.name,
        mac,
      )
      this.moveOrConflict(this.row(mac)!, 'assign')
      this.event(mac, 'assigned', { image: a.image, seed: a.seedYaml !== undefined, diskHints: a.diskHints ?? null })
      return toRecord(this.row(mac)!)
    })
    this.changed(mac)
    return rec
  }

  /** Sends a machine back to the deploy environment; its old tokens stop working. */
  redeploy(mac: string): MachineRecord {
    return this.change(mac, 'redeploy', (row) => {
      this.sql('UPDATE machines SET generation = generation + 1, progress = NULL, error = NULL WHERE mac = ?').run(mac)
      this.sql('DELETE FROM tokens WHERE mac = ?').run(mac)
      this.event(mac, 'redeploy', { from: row.state })
      return row
    })
  }

  /** Forgets a machine (its events stay, for the record). */
  remove(mac: string): boolean {
    const n = this.tx(() => {
      const r = this.sql('DELETE FROM machines WHERE mac = ?').run(mac)
      this.sql('DELETE FROM agent_requests WHERE mac = ?').run(mac)
      if (r.changes) this.event(mac, 'deleted', {})
      return r.changes
    })
    if (n) this.changed(mac)
    return n > 0
  }

  /** A change in one transaction: the callback's writes, then the state move (409 when not allowed). */
  private change(mac: string, action: MachineAction | undefined, body: (row: Row) => Row): MachineRecord {
    const rec = this.tx(() => {
      const row = this.row(mac)
      if (!row) throw new InputError('NOT_FOUND', `Cannot change machine ${mac}: no such machine`)
      if (action) this.checkMove(row, action)
      body(row)
      if (action) this.move(this.row(mac)!, action)
      this.touch(mac)
      return toRecord(this.row(mac)!)
    })
    this.changed(mac)
    return rec
  }

  private checkMove(row: Row, action: MachineAction): void {
    if (nextState(row.state, action, row.image !== null) === undefined) throw conflict(row, action)
  }

  private moveOrConflict(row: Row, action: MachineAction): void {
    this.checkMove(row, action)
    this.move(row, action)
  }

  private move(row: Row, action: MachineAction): void {
    const to = nextState(row.state, action, row.image !== null)
    if (to === undefined) throw conflict(row, action)
    if (to === row.state) return
    const now = new Date().toISOString()
    const times = { ...(JSON.parse(row.state_times) as Record<string, string>), [to]: now }
    this.sql('UPDATE machines SET state = ?, state_times = ?, updated = ? WHERE mac = ?').run(
      to,
      JSON.stringify(times),
      now,
      row.mac,
    )
    this.event(row.mac, 'state', { from: row.state, to })
  }

  private touch(mac: string): void {
    this.sql('UPDATE machines SET updated = ? WHERE mac = ?').run(new Date().toISOString(), mac)
  }

  private event(mac: string, kind: string, fields: Record<string, unknown>): void {
    this.sql('INSERT INTO events (mac, time, kind, fields) VALUES (?, ?, ?, ?)').run(
      mac,
      new Date().toISOString(),
      kind,
      JSON.stringify(fields),
    )
  }

  private sql(source: string) {
    return this.db.sql(source)
  }

  private row(mac: string): Row | undefined {
    return this.sql('SELECT * FROM machines WHERE mac = ?').get(mac) as Row | undefined
  }
}

/** A state change that is not allowed now: the API answers 409. */
export class StateConflictError extends HwimageError {
  constructor(message: string, hint: string) {
    super('USAGE', message, { hint })
  }
}

function conflict(row: Row, action: MachineAction): StateConflictError {
  const hint =
    row.state === 'installed' || row.state === 'deployed'
      ? `use redeploy to install ${row.mac} again`
      : row.image === null
        ? 'assign an image first'
        : "see the machine's events"
  return new StateConflictError(`Cannot ${action} machine ${row.mac}: it is ${row.state}`, hint)
}
