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
  {
    version: 2,
    description: 'retained messages and persistent sessions',
    sql: `
      -- A rowid table with a UNIQUE topic rather than WITHOUT ROWID: retained payloads may
      -- be large, and WITHOUT ROWID suits rows far smaller than a page (sqlite.org/withoutrowid.html §4).
      CREATE TABLE retained (
        id          INTEGER PRIMARY KEY,
        topic       TEXT    NOT NULL UNIQUE,
        payload     BLOB    NOT NULL,
        qos         INTEGER NOT NULL,
        props       TEXT,
        expires_at  INTEGER,
        origin_kind TEXT    NOT NULL,
        origin_id   TEXT    NOT NULL
      );

      -- Sessions with clean session 0 (3.1.1) or a session expiry > 0 (v5).
      -- offline_at NULL: online when last written (a crash counts from the restart).
      CREATE TABLE sessions (
        client_id   TEXT    PRIMARY KEY,
        protocol    INTEGER NOT NULL,
        expiry      INTEGER NOT NULL,
        offline_at  INTEGER
      ) WITHOUT ROWID;

      -- options: bit 0 No Local, bit 1 Retain As Published, bits 2-3 Retain Handling.
      CREATE TABLE subscriptions (
        client_id   TEXT    NOT NULL,
        filter      TEXT    NOT NULL,
        qos         INTEGER NOT NULL,
        options     INTEGER NOT NULL,
        sub_id      INTEGER,
        PRIMARY KEY (client_id, filter)
      ) WITHOUT ROWID;

      -- Queued and inflight QoS 1/2 messages of those sessions, one row per session and
      -- message (a copy each: one publish to many offline sessions costs a row each, and
      -- no reference counting is needed). id is handed out by the journal in delivery
      -- order. state: 0 queued, 1 wait-ack, 2 wait-rec, 3 wait-comp; flags: bit 0 the
      -- message's RETAIN, bit 1 the RETAIN flag it is sent with.
      CREATE TABLE deliveries (
        id          INTEGER PRIMARY KEY,
        client_id   TEXT    NOT NULL,
        topic       TEXT    NOT NULL,
        payload     BLOB    NOT NULL,
        msg_qos     INTEGER NOT NULL,
        qos         INTEGER NOT NULL,
        flags       INTEGER NOT NULL,
        props       TEXT,
        expires_at  INTEGER,
        origin_kind TEXT    NOT NULL,
        origin_id   TEXT    NOT NULL,
        sub_ids     TEXT,
        packet_id   INTEGER NOT NULL,
        state       INTEGER NOT NULL
      );
      -- Index entries end with the rowid: (client_id) is already ordered by (client_id, id).
      CREATE INDEX deliveries_client ON deliveries(client_id);

      CREATE TABLE qos2_in (
        client_id   TEXT    NOT NULL,
        packet_id   INTEGER NOT NULL,
        PRIMARY KEY (client_id, packet_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    description: 'outbox seqs numbered per bridge; no bridge index, no AUTOINCREMENT (fewer pages per commit)',
    sql: `
      -- Each commit of version 1's outbox rewrote three b-trees: the table, the (bridge)
      -- index and sqlite_sequence. An index b-tree grows by splitting pages among siblings,
      -- so the index alone cost about as many WAL bytes as the rows (flash wear). Now each
      -- bridge owns a range of seqs, number * 2^40 + 1, 2, 3… (numbers from 0), and every query by bridge is a
      -- rowid range scan of the table itself. The backend hands out seqs (sqlite-outbox.ts);
      -- last_seq keeps the high-water mark of a bridge whose newest rows were deleted, so a
      -- seq (and the message id made from it) is never handed out twice.
      CREATE TABLE outbox_bridges (
        name     TEXT    PRIMARY KEY,
        no       INTEGER NOT NULL UNIQUE,
        last_seq INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- The bridge with the oldest row is number 0: its seqs and message ids stay what they
      -- were (with one bridge, the usual case, nothing changes). Each other one moves to a
      -- range of its own.
      INSERT INTO outbox_bridges (name, no, last_seq)
        SELECT bridge, row_number() OVER (ORDER BY min(seq)) - 1, 0 FROM outbox GROUP BY bridge;
      -- Every seq version 1 handed out, in every range: no new seq equals an old one.
      UPDATE outbox_bridges
        SET last_seq = no * 1099511627776 + coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0);

      CREATE TABLE outbox_v3 (
        seq         INTEGER PRIMARY KEY,
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
      -- The rows keep their order within their bridge. Those of a second bridge get new
      -- message ids, so one of them in flight during the upgrade may reach its cloud twice.
      INSERT INTO outbox_v3
        SELECT b.no * 1099511627776 + o.seq, o.bridge, o.topic, o.payload, o.qos, o.retain, o.props, o.created_at,
               o.expires_at, o.origin_kind, o.origin_id, o.source_seq, o.bytes
        FROM outbox o JOIN outbox_bridges b ON b.name = o.bridge ORDER BY o.seq;
      DROP TABLE outbox;
      ALTER TABLE outbox_v3 RENAME TO outbox;
    `,
  },
  {
    version: 4,
    description: 'per-source numbers appended to a log, folded into source_seq now and then',
    sql: `
      -- With the uplink up, a source that publishes about once a second has one row in the
      -- outbox at a time, so nearly every cloud ack deletes a source's newest row and its
      -- number must be saved. Upserted into source_seq (a b-tree keyed by source) that
      -- touched most of its pages in every commit: half the bytes written in steady state.
      -- Each commit now appends one row holding the numbers it saves; the backend folds the
      -- log into source_seq after many rows (sqlite-outbox.ts) and reads both at start.
      CREATE TABLE source_seq_log (
        id      INTEGER PRIMARY KEY,
        entries TEXT    NOT NULL
      );
    `,
  },
  {
    version: 5,
    description: 'persistent MQTT-SN sessions',
    sql: `
      -- One row per MQTT-SN client with CleanSession=0: its Will, subscriptions and topic ids
      -- as JSON (src/mqttsn/persistence.ts). Written when they change, not per message.
      CREATE TABLE sn_sessions (
        client_id TEXT PRIMARY KEY,
        record    TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 6,
    description: 'Wills of persistent sessions',
    sql: `
      -- The Will held for a connected persistent client, or pending after its connection
      -- closed (JSON, src/store/state-sql.ts): published after a restart if the client does
      -- not come back in time.
      ALTER TABLE sessions ADD COLUMN will TEXT;
    `,
  },
  {
    version: 7,
    description: 'user names of persistent sessions',
    sql: `
      -- The verified user name of the client that opened the session (NULL: anonymous): the
      -- ACL's subject for its restored subscriptions until the client connects again.
      ALTER TABLE sessions ADD COLUMN user TEXT;
    `,
  },
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
