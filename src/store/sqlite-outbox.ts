/**
 * The durable outbox: GroupCommitOutbox over the `outbox` and `source_seq` tables of
 * the gateway database (schema in migrations.ts). All statements are prepared once;
 * each commit is one `BEGIN IMMEDIATE … COMMIT`, i.e. one WAL append and, with
 * synchronous=FULL, one fsync for the whole batch.
 *
 * The outbox does not own the database: close() commits what is pending and stops
 * its timers; whoever opened the database closes it afterwards.
 */
import { dirname } from 'node:path';
import { OutpostError } from '../core/errors.js';
import type { HeadRow, NewRow, OutboxBackend, RemovedRow, SourceSeq, StoredRow } from './backend.js';
import type { SqliteStatement, StoreDatabase } from './database.js';
import { GroupCommitOutbox, type OutboxOptions } from './outbox-core.js';
import type { DiskReserve } from './reserve.js';

export interface SqliteOutboxOptions extends OutboxOptions {
  db: StoreDatabase;
  /** Space released when the disk fills up (store.reserve). */
  reserve?: DiskReserve;
}

export class SqliteOutbox extends GroupCommitOutbox {
  constructor(opts: SqliteOutboxOptions) {
    super(new SqliteBackend(opts.db, opts.reserve), opts);
  }
}

const READ_COLUMNS =
  'seq, topic, payload, qos, retain, props, created_at AS createdAt, expires_at AS expiresAt, ' +
  'origin_kind AS originKind, origin_id AS originId, source_seq AS sourceSeq';

class SqliteBackend implements OutboxBackend {
  private s: ReturnType<typeof prepare> | undefined;
  private runInTx: ((fn: () => void) => void) | undefined;

  constructor(
    private readonly db: StoreDatabase,
    private readonly reserve?: DiskReserve,
  ) {}

  get storeId(): string {
    return this.db.storeId;
  }

  /** Statements are compiled on first use, so the constructor touches nothing. */
  private get st(): ReturnType<typeof prepare> {
    return (this.s ??= prepare(this.db));
  }

  transaction(fn: () => void): void {
    if (this.runInTx === undefined) {
      // IMMEDIATE takes the write lock at BEGIN, so a competing connection shows up as
      // SQLITE_BUSY before any work rather than in the middle of the batch.
      const tx = this.db.handle.transaction((f: () => void) => f());
      this.runInTx = (f) => tx.immediate(f);
    }
    this.runInTx(fn);
  }

  insert(row: NewRow): number {
    const r = this.st.insert.run(
      row.bridge,
      row.topic,
      row.payload,
      row.qos,
      row.retain,
      row.props,
      row.createdAt,
      row.expiresAt,
      row.originKind,
      row.originId,
      row.sourceSeq,
      row.bytes,
    );
    return Number(r.lastInsertRowid);
  }

  remove(bridge: string, seq: number): RemovedRow | undefined {
    return this.st.remove.get(seq, bridge) as RemovedRow | undefined;
  }

  head(bridge: string, limit: number): HeadRow[] {
    return this.st.head.all(bridge, limit) as HeadRow[];
  }

  read(bridge: string, afterSeq: number, limit: number): StoredRow[] {
    return this.st.read.all(bridge, afterSeq, limit) as StoredRow[];
  }

  newest(bridge: string): number {
    return (this.st.newest.get(bridge) as { seq: number | null }).seq ?? 0;
  }

  lastSourceSeq(bridge: string, originKind: string, originId: string): number {
    return (this.st.lastSource.pluck().get(bridge, originKind, originId) as number | undefined) ?? 0;
  }

  saveSourceSeq(bridge: string, originKind: string, originId: string, last: number): void {
    this.st.saveSource.run(bridge, originKind, originId, last);
  }

  sourceSeqsInRows(): SourceSeq[] {
    return this.st.rowSources.all() as SourceSeq[];
  }

  totals(): Array<{ bridge: string; rows: number; bytes: number }> {
    return this.st.totals.all() as Array<{ bridge: string; rows: number; bytes: number }>;
  }

  /**
   * A WAL that filled the disk holds many versions of the same few pages; the checkpoint
   * writes each page once into the database file and TRUNCATE gives the rest back, so the
   * deletes of a draining bridge (and then new messages) fit again. Without it a full disk
   * stays full: every commit, deletes included, needs WAL space first.
   */
  relieve(): boolean {
    const released = this.reserve?.release() ?? false;
    return this.checkpoint() || released;
  }

  checkpoint(): boolean {
    try {
      const r = this.db.handle.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      return r[0]?.busy === 0;
    } catch {
      return false; // still full: the next retry tries again
    }
  }

  /** The reserve, released on a full disk, is written again once the disk has room. */
  afterCommit(): void {
    if (this.reserve !== undefined && !this.reserve.isHeld) this.reserve.restore(dirname(this.db.file));
  }

  storeError(err: unknown, messages: number): OutpostError {
    const code = String((err as { code?: unknown }).code ?? '');
    const file = this.db.file;
    const what = `${file} could not commit ${messages} message(s) (${code || (err as Error).message})`;
    const after = 'they were refused, not acknowledged, and the next batch will try again';
    // SQLite reports ENOSPC as SQLITE_FULL, and max_page_count the same way; a write
    // error on a full or dying SD card can also surface as SQLITE_IOERR_*.
    if (code === 'SQLITE_FULL') {
      return new OutpostError('STORE_FULL', `disk full: ${what}; ${after}; free space on the disk of store.dir`, { cause: err });
    }
    if (code.startsWith('SQLITE_IOERR')) {
      return new OutpostError('STORE_FULL', `disk full or failing: ${what}; ${after}; check free space and the disk of store.dir`, {
        cause: err,
      });
    }
    return new OutpostError('STORE_UNAVAILABLE', `database error: ${what}; ${after}`, { cause: err });
  }
}

function prepare(db: StoreDatabase): Record<'insert' | 'remove' | 'rowSources' | 'head' | 'newest' | 'read' | 'lastSource' | 'saveSource' | 'totals', SqliteStatement> {
  const h = db.handle;
  return {
    insert: h.prepare(
      'INSERT INTO outbox (bridge, topic, payload, qos, retain, props, created_at, expires_at, origin_kind, origin_id, source_seq, bytes) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    // RETURNING (SQLite ≥ 3.35) gives the deleted row's size without a second lookup.
    remove: h.prepare('DELETE FROM outbox WHERE seq = ? AND bridge = ? RETURNING bytes, origin_kind AS originKind, origin_id AS originId, source_seq AS sourceSeq'),
    rowSources: h.prepare('SELECT bridge, origin_kind AS originKind, origin_id AS originId, max(source_seq) AS last FROM outbox GROUP BY bridge, origin_kind, origin_id'),
    head: h.prepare('SELECT seq, bytes, created_at AS createdAt FROM outbox WHERE bridge = ? ORDER BY seq LIMIT ?'),
    // max(seq) over the (bridge) index: index entries end with the rowid, so this is one seek.
    newest: h.prepare('SELECT max(seq) AS seq FROM outbox WHERE bridge = ?'),
    read: h.prepare(`SELECT ${READ_COLUMNS} FROM outbox WHERE bridge = ? AND seq > ? ORDER BY seq LIMIT ?`),
    lastSource: h.prepare('SELECT last_seq FROM source_seq WHERE bridge = ? AND origin_kind = ? AND origin_id = ?'),
    saveSource: h.prepare(
      'INSERT INTO source_seq (bridge, origin_kind, origin_id, last_seq) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (bridge, origin_kind, origin_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)',
    ),
    totals: h.prepare('SELECT bridge, count(*) AS rows, sum(bytes) AS bytes FROM outbox GROUP BY bridge'),
  };
}
