// The state database's tables (src/serve/state/store.ts), and the migration of an older
// database to them. A database of a newer schema than this serve knows is refused, not changed.

import { InputError } from '../../errors.js'
import type { GroupCommitDb } from './group-commit.js'

export const SCHEMA_VERSION = 2

/** Version 2: the keys of the agents' requests already applied. */
const SCHEMA_V2 = `
CREATE TABLE agent_requests (
  mac TEXT NOT NULL,
  key TEXT NOT NULL,
  route TEXT NOT NULL,
  time TEXT NOT NULL,
  PRIMARY KEY (mac, key)
);
CREATE INDEX agent_requests_time ON agent_requests (time);
`

const SCHEMA = `
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE machines (
  mac TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  image TEXT,
  seed_yaml TEXT,
  disk_hints TEXT NOT NULL DEFAULT '[]',
  source TEXT NOT NULL,            -- 'config', 'enlisted' or 'api': who made it
  generation INTEGER NOT NULL DEFAULT 1,
  inventory TEXT,
  install_report TEXT,
  first_boot_report TEXT,
  progress TEXT,
  error TEXT,
  state_times TEXT NOT NULL DEFAULT '{}',
  created TEXT NOT NULL,
  updated TEXT NOT NULL
);
CREATE TABLE tokens (
  hash TEXT PRIMARY KEY,
  mac TEXT NOT NULL REFERENCES machines(mac) ON DELETE CASCADE,
  generation INTEGER NOT NULL,
  via TEXT NOT NULL,
  issued TEXT NOT NULL
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mac TEXT NOT NULL,
  time TEXT NOT NULL,
  kind TEXT NOT NULL,
  fields TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_mac ON events (mac, id);
${SCHEMA_V2}`

/** Creates the tables in a new database, or brings an older one to SCHEMA_VERSION, in one transaction. */
export function migrate(db: GroupCommitDb): void {
  db.tx(() => {
    const has = db.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get()
    if (!has) {
      db.exec(SCHEMA)
      db.sql('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION)
      return
    }
    const row = db.sql('SELECT version FROM schema_version').get() as { version: number } | undefined
    if (row?.version === 1) {
      db.exec(SCHEMA_V2)
      db.sql('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION)
      return
    }
    if (row?.version !== SCHEMA_VERSION) {
      throw new InputError(
        'CONFIG_INVALID',
        `Cannot use the state database "${db.file}": schema version ${row?.version ?? 'none'}, this serve knows ${SCHEMA_VERSION}`,
        { hint: 'use the hwimage version that made it, or a new state_dir' },
      )
    }
  })
}
