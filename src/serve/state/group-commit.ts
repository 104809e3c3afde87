// Group commit for serve's SQLite database (better-sqlite3): the changes made in one turn
// of the event loop share one transaction, each change a savepoint in it, committed with one
// fsync at the turn's end (setImmediate). Each change was its own transaction and fsync
// before, and 1,000 deploy agents asked for ~1,000 of them a second (`make bench-serve`):
// commit and fsync were a quarter of serve's CPU. Nothing is answered before its batch is on
// disk (afterCommit), so what a client was told survives a crash or `kill -9`; a batch whose
// commit fails is rolled back, and its waiters are told so.
//
// WAL mode and synchronous=FULL: a `kill -9` or a restart leaves the last committed state
// (SQLite's atomic commit, https://sqlite.org/atomiccommit.html; WAL: https://sqlite.org/wal.html).

import Database from 'better-sqlite3'

export class GroupCommitDb {
  private readonly db: Database.Database
  /** Prepared statements by SQL text: preparing one per call was an eighth of serve's CPU at load. */
  private readonly statements = new Map<string, Database.Statement>()
  /** The open batch's waiters (afterCommit), or undefined when no batch is open. */
  private batch: Array<(ok: boolean) => void> | undefined
  /** Why the last batch failed to commit (for serve's log), or undefined. */
  commitError: Error | undefined

  /**
   * Opens `file`. `committed(ok)` is called after each batch's commit (or its rollback),
   * before the batch's waiters: the store tells its listeners there.
   */
  constructor(
    readonly file: string,
    private readonly committed: (ok: boolean) => void,
  ) {
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
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

  /** Whether a batch is open (its changes are not yet on disk). */
  get batchOpen(): boolean {
    return this.batch !== undefined
  }

  /** Commits the open batch (none: nothing), then calls `committed` and the waiters. */
  commit(): void {
    const waiters = this.batch
    if (!waiters) return
    this.batch = undefined
    let ok = true
    try {
      this.db.exec('COMMIT')
    } catch (e) {
      ok = false
      if (this.db.inTransaction) this.db.exec('ROLLBACK')
      this.commitError = e as Error
    }
    try {
      this.committed(ok)
    } finally {
      // A listener that throws must not leave the batch's answers waiting.
      for (const w of waiters) w(ok)
    }
  }

  /**
   * Calls `then(true)` once the changes made so far are on disk (at once when there are none
   * waiting), or `then(false)` when their batch could not be committed (it was rolled back).
   */
  afterCommit(then: (ok: boolean) => void): void {
    if (this.batch) this.batch.push(then)
    else then(true)
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

  /** Commits what is open and closes the database (the WAL is checkpointed). */
  close(): void {
    this.commit()
    this.db.close()
  }
}
