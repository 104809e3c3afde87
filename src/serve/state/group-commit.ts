// Group commit for serve's SQLite database (better-sqlite3): the changes made in one turn
// of the event loop share one transaction, each change a savepoint in it, committed with one
// fsync at the turn's end (setImmediate). Each change was its own transaction and fsync
// before, and 1,000 deploy agents asked for ~1,000 of them a second (`make bench-serve`):
// commit and fsync were a quarter of serve's CPU. Nothing is answered before its batch is on
// disk (afterCommit), so what a client was told survives a crash or `kill -9`; a batch whose
// commit fails is rolled back, and its waiters are told so.
//
// The fsync that makes a batch durable runs on libuv's thread pool, not on the event loop:
// SQLite runs with synchronous=NORMAL (in WAL mode it then writes a commit to the WAL and
// returns, syncing only at checkpoints) and this class fsyncs the WAL itself after each
// COMMIT, releasing the batch's waiters only when that fsync has returned. That is the
// durability of synchronous=FULL (which fsyncs the WAL inside COMMIT, on the main thread,
// where it was 29% of serve's time with 1,000 agents: requests waited behind the disk),
// with the event loop free to read and batch the next requests meanwhile. One fsync is in
// flight at a time; batches committed meanwhile share the next. A `kill -9` or a restart
// leaves the last committed state (SQLite's atomic commit, https://sqlite.org/atomiccommit.html;
// WAL and synchronous: https://sqlite.org/wal.html, https://sqlite.org/pragma.html#pragma_synchronous).

import Database from 'better-sqlite3'
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs'

export class GroupCommitDb {
  private readonly db: Database.Database
  /** Prepared statements by SQL text: preparing one per call was an eighth of serve's CPU at load. */
  private readonly statements = new Map<string, Database.Statement>()
  /** The open batch: its waiters (afterCommit), or undefined when no batch is open. */
  private batch: Array<(ok: boolean) => void> | undefined
  /** Committed batches whose WAL fsync has not returned yet, oldest first: each its release. */
  private unsynced: Array<(ok: boolean) => void> = []
  /** The batches the fsync in flight is for, or undefined when none is. */
  private inFlight: Array<(ok: boolean) => void> | undefined
  /** The WAL file, opened after the first commit (which creates it), for fsync. */
  private walFd: number | undefined
  /** Why the last batch failed to commit or sync (for serve's log), or undefined. */
  commitError: Error | undefined

  /**
   * Opens `file`. `seal()` is called at each batch's COMMIT; the function it returns is
   * called with the batch's outcome once it is durable (or has failed), before the batch's
   * waiters: the store takes the batch's changed machines at seal and tells its listeners then.
   */
  constructor(
    readonly file: string,
    private readonly seal: () => (ok: boolean) => void,
  ) {
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('foreign_keys = ON')
    this.db.pragma('busy_timeout = 5000')
  }

  /**
   * Runs `fn` as one transaction in the current batch: a savepoint, so a throw undoes only
   * its own writes. The batch opens with the first tx of a turn and is committed at its end.
   */
  tx<T>(fn: () => T): T {
    if (!this.batch) {
      this.db.exec('BEGIN IMMEDIATE')
      this.batch = []
      setImmediate(() => this.commit())
    }
    return this.db.transaction(fn)()
  }

  /** Whether a batch is open (its changes are not yet committed). */
  get batchOpen(): boolean {
    return this.batch !== undefined
  }

  /** Commits the open batch (none: nothing); its waiters are released once the WAL is synced. */
  commit(): void {
    const waiters = this.batch
    if (!waiters) return
    this.batch = undefined
    const told = this.seal()
    const release = (ok: boolean) => {
      try {
        told(ok)
      } finally {
        // A listener that throws must not leave the batch's answers waiting.
        for (const w of waiters) w(ok)
      }
    }
    try {
      this.db.exec('COMMIT')
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK')
      this.commitError = e as Error
      // Its answers are refused now; batches before it still wait for their sync.
      release(false)
      return
    }
    this.unsynced.push(release)
    this.sync()
  }

  /** Starts the WAL fsync for the batches committed so far, unless one is in flight. */
  private sync(): void {
    if (this.inFlight || this.unsynced.length === 0) return
    const batches = this.unsynced
    this.unsynced = []
    let fd: number
    try {
      fd = this.wal()
    } catch (e) {
      this.synced(batches, e as Error)
      return
    }
    this.inFlight = batches
    fsync(fd, (e) => {
      // close() has synced and released them meanwhile.
      if (this.inFlight !== batches) return
      this.inFlight = undefined
      this.synced(batches, e ?? undefined)
      this.sync()
    })
  }

  private synced(batches: Array<(ok: boolean) => void>, e: Error | undefined): void {
    if (e) this.commitError = e
    for (const release of batches) release(!e)
  }

  private wal(): number {
    this.walFd ??= openSync(`${this.file}-wal`, 'r')
    return this.walFd
  }

  /**
   * Calls `then(true)` once the changes made so far are on disk (at once when there are none
   * waiting), or `then(false)` when their batch could not be committed (it was rolled back)
   * or synced. A read answered while earlier changes are still being synced waits for them too.
   */
  afterCommit(then: (ok: boolean) => void): void {
    if (this.batch) this.batch.push(then)
    else if (this.unsynced.length > 0 || this.inFlight) {
      const last = this.unsynced.pop()
      this.unsynced.push((ok) => {
        last?.(ok)
        then(ok)
      })
      this.sync()
    } else then(true)
  }

  /** The statement for `source`, prepared once. */
  sql(source: string): Database.Statement {
    let st = this.statements.get(source)
    if (!st) {
      st = this.db.prepare(source)
      this.statements.set(source, st)
    }
    return st
  }

  /** Runs SQL text with no parameters (schema changes). */
  exec(source: string): void {
    this.db.exec(source)
  }

  /** Commits what is open, syncs it, releases every waiter, and closes the database (the WAL is checkpointed). */
  close(): void {
    this.commit()
    if (this.walFd !== undefined) {
      let error: Error | undefined
      try {
        fsyncSync(this.walFd)
      } catch (e) {
        error = e as Error
      }
      const batches = [...(this.inFlight ?? []), ...this.unsynced]
      this.inFlight = undefined
      this.unsynced = []
      this.synced(batches, error)
      closeSync(this.walFd)
      this.walFd = undefined
    }
    this.db.close()
  }
}
