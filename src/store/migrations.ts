/**
 * Numbered schema migrations. `PRAGMA user_version` (a 32-bit integer in the database
 * header that SQLite itself never touches) holds the number of the last migration applied;
 * database.ts runs each newer one in its own transaction, so a crash mid-upgrade leaves
 * the file at the previous version, never half-migrated (DDL is transactional in SQLite).
 *
 * Append new migrations at the end; never edit one that has shipped. The committed
 * fixtures in test/fixtures/store/ are files written by older versions and must keep
 * opening.
 */

export interface Migration {
  /** 1, 2, 3…: the user_version the database has once this migration ran. */
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'outbox, per-source sequence numbers, meta',
    sql: `
      -- AUTOINCREMENT, not a plain rowid: without it SQLite picks max(rowid)+1, so after
      -- the newest rows were acked and deleted the next append would get a seq that was
      -- already handed out (the forwarder's cursor would skip it and the cloud would drop
      -- it as a replay of the same msgId). AUTOINCREMENT keeps the high-water mark in
      -- sqlite_sequence ("the largest ROWID ever held", sqlite.org/autoinc.html) at the
      -- cost of one small page per commit, which group commit amortizes.
      CREATE TABLE outbox (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        bridge      TEXT    NOT NULL,
        topic       TEXT    NOT NULL,
        payload     BLOB    NOT NULL,
        qos         INTEGER NOT NULL,
        retain      INTEGER NOT NULL,
        props       TEXT,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        origin_kind TEXT    NOT NULL,
        origin_id   TEXT    NOT NULL,
        source_seq  INTEGER NOT NULL,
        bytes       INTEGER NOT NULL
      );
      -- Every index entry ends with the rowid (sqlite.org/fileformat2.html §2.5.1), so an
      -- index on (bridge) is already ordered by (bridge, seq): "WHERE bridge=? AND seq>?
      -- ORDER BY seq" is a range scan, and naming seq in the index would add nothing.
      CREATE INDEX outbox_bridge ON outbox(bridge);

      -- Small, composite-key, never scanned by rowid: WITHOUT ROWID stores each row once
      -- in the key b-tree instead of a table plus a separate primary-key index.
      CREATE TABLE source_seq (
        bridge      TEXT    NOT NULL,
        origin_kind TEXT    NOT NULL,
        origin_id   TEXT    NOT NULL,
        last_seq    INTEGER NOT NULL,
        PRIMARY KEY (bridge, origin_kind, origin_id)
      ) WITHOUT ROWID;

      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
