/**
 * The durable outbox: GroupCommitOutbox over the `outbox`, `outbox_bridges` and
 * `source_seq` tables of the gateway database (schema in migrations.ts). All statements
 * are prepared once; each commit is one `BEGIN IMMEDIATE … COMMIT`, i.e. one WAL append
 * and, with synchronous=FULL, one fsync for the whole batch.
 *
 * Seqs: bridge number n (0, 1, 2…) owns n * 2^40 + 1, 2, 3… (migration 3), so a bridge's rows are a
 * rowid range of the one table and a commit touches the table's b-tree alone. The backend
 * hands seqs out; a bridge's high-water mark is written to outbox_bridges only when a
 * commit deleted its newest row and appended none after it (the drained outbox), not in
 * every commit as AUTOINCREMENT would.
 *
 * Per-source numbers that leave the outbox with their rows (commit-tx.ts) are appended as
 * one row of source_seq_log per commit and folded into source_seq every `sourceLogRows`
 * rows (migration 4): a sequential append instead of upserts spread over the source table.
 *
 * The outbox does not own the database: close() commits what is pending and stops
 * its timers; whoever opened the database closes it afterwards.
 */
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { OutpostError } from '../core/errors.js';
import type { HeadRow, NewRow, OutboxBackend, RemovedRow, SourceSeq, StoredRow } from './backend.js';
import { MEMORY, PAGE_SIZE, WAL_CHECKPOINT_PAGES, type SqliteStatement, type StoreDatabase } from './database.js';
import { sourceKey } from './commit-tx.js';
import { decodeSourceLog, encodeSourceLog } from './source-log.js';
import { GroupCommitOutbox, type OutboxOptions } from './outbox-core.js';
import type { DiskReserve } from './reserve.js';

export interface SqliteOutboxOptions extends OutboxOptions {
  db: StoreDatabase;
  /** Space released when the disk fills up (store.reserve). */
  reserve?: DiskReserve;
  /** Rows of the source-number log before it is folded into source_seq (default 1,000). */
  sourceLogRows?: number;
  /** WAL size from which a nearly empty outbox checkpoints (default 4 MiB; see afterCommit). */
  walSettleBytes?: number;
}

/** The WAL size from which a nearly empty outbox checkpoints (see afterCommit). */
const WAL_SETTLE_BYTES = 4 * 1024 * 1024;
/**
 * Up to these the outbox counts as nearly empty: with the uplink up it holds a commit's
 * rows or two (a few hundred), and the vacuum moves at most the pages they fill.
 */
const SETTLED_ROWS = 1000;
const SETTLED_BYTES = 256 * 1024;
/** Pages freed per step when the vacuum after a full disk must go in steps (see vacuum). */
const VACUUM_STEP_PAGES = 256;
/** Commits between two looks at the WAL's size (a stat of the -wal file). */
const WAL_CHECK_EVERY = 8;

export class SqliteOutbox extends GroupCommitOutbox {
  constructor(opts: SqliteOutboxOptions) {
    super(new SqliteBackend(opts.db, opts.reserve, opts.sourceLogRows ?? 1000, opts.walSettleBytes ?? WAL_SETTLE_BYTES), opts);
  }
}

/** Distinct sources in the log that fold it early (bounds the memory of its in-memory copy). */
const LOGGED_MAX = 10_000;

/** Keeps the higher of two numbers saved for one source. */
function keepNewest(bySource: Map<string, SourceSeq>, key: string, s: SourceSeq): void {
  if ((bySource.get(key)?.last ?? 0) < s.last) bySource.set(key, s);
}

/** Seqs per bridge: 2^40 (35 years at 1,000 msg/s); 8,191 bridges stay below 2^53. */
const SPAN = 2 ** 40;

interface BridgeRange {
  no: number;
  /** The highest seq handed out (or saved as the high-water mark). */
  top: number;
}

const READ_COLUMNS =
  'seq, topic, payload, qos, retain, props, created_at AS createdAt, expires_at AS expiresAt, ' +
  'origin_kind AS originKind, origin_id AS originId, source_seq AS sourceSeq';

class SqliteBackend implements OutboxBackend {
  private commitsSinceWalCheck = 0;
  private s: ReturnType<typeof prepare> | undefined;
  private runInTx: ((fn: () => void) => void) | undefined;
  private ranges: Map<string, BridgeRange> | undefined;
  /** Bridges whose newest row this transaction deleted (their high-water mark must be saved). */
  private readonly drained = new Set<string>();
  /** Source numbers this transaction saves (one log row at its end). */
  private readonly toLog = new Map<string, SourceSeq>();
  /** What the log holds, newest number per source, and its row count; undefined = read it again. */
  private log: { bySource: Map<string, SourceSeq>; rows: number } | undefined;
  /** Whether this transaction's appends may use the disk (keepDrainRoom); undefined = not looked yet. */
  private drainRoom: boolean | undefined;

  constructor(
    private readonly db: StoreDatabase,
    private readonly reserve: DiskReserve | undefined,
    private readonly sourceLogRows: number,
    private walSettleBytes: number,
  ) {}

  get storeId(): string {
    return this.db.storeId;
  }

  /** Statements are compiled on first use, so the constructor touches nothing. */
  private get st(): ReturnType<typeof prepare> {
    return (this.s ??= prepare(this.db));
  }

  transaction(fn: () => void): void {
    this.drainRoom = undefined;
    if (this.db.moved()) {
      // SQLite's own code for a database file moved since it was opened.
      throw Object.assign(new Error(`${this.db.file} was deleted or replaced while outpost ran`), { code: 'SQLITE_READONLY_DBMOVED' });
    }
    if (this.runInTx === undefined) {
      this.boundWalByReserve();
      // IMMEDIATE takes the write lock at BEGIN, so a competing connection shows up as
      // SQLITE_BUSY before any work rather than in the middle of the batch.
      const tx = this.db.handle.transaction((f: () => void) => {
        this.drained.clear();
        this.toLog.clear();
        f();
        for (const bridge of this.drained) this.st.saveTop.run(this.ranges!.get(bridge)!.top, bridge);
        if (this.toLog.size > 0) this.appendSourceLog();
      });
      this.runInTx = (f) => tx.immediate(f);
    }
    try {
      this.runInTx(fn);
    } catch (err) {
      // Rolled back: bridges added, seqs handed out and the source log are read again.
      this.ranges = undefined;
      this.log = undefined;
      throw err;
    }
  }

  /**
   * A reserve smaller than the WAL SQLite lets grow (database.ts, WAL_CHECKPOINT_PAGES) could
   * not drain a full disk: a backlog written since the last checkpoint sits in the WAL, and
   * the checkpoint that must come before the deletes fit needs the database file to grow by
   * what the WAL holds. With a 1 MiB reserve on a small card that checkpoint never fitted,
   * every delete failed with it and the outbox stayed full for good. So SQLite checkpoints
   * once the WAL holds as much as the reserve: the released reserve covers that checkpoint.
   */
  private boundWalByReserve(): void {
    const bytes = this.reserve?.bytes ?? 0;
    if (bytes <= 0 || this.db.file === MEMORY) return;
    const pages = Math.max(16, Math.floor(bytes / PAGE_SIZE));
    if (pages >= WAL_CHECKPOINT_PAGES) return;
    this.db.handle.pragma(`wal_autocheckpoint = ${pages}`);
    // The WAL now stays near that size, so the settled outbox gives its freed pages back (and
    // the reserve can be written again) from half of it, not from a size it never reaches.
    this.walSettleBytes = Math.min(this.walSettleBytes, (pages * PAGE_SIZE) / 2);
  }

  /**
   * While the reserve is given back (a full disk draining), new messages may not take the
   * room it held: the deletes of the drain free space, and appends that took it again filled
   * the disk with no reserve left, so the checkpoint the next deletes needed no longer fitted
   * and the outbox never drained. Until the disk has the reserve's size free, appends fail as
   * on a full disk (refused, counted as store-error); the reserve is written again at twice
   * that (DiskReserve.restore). Looked at once per commit.
   */
  private keepDrainRoom(): void {
    const reserve = this.reserve;
    if (reserve === undefined || !reserve.isReleased) return;
    if (this.drainRoom === undefined) {
      try {
        // Pages the drain freed inside the file are room too: new rows reuse them, and the
        // vacuum gives them back to the disk only once commits succeed again.
        const s = statfsSync(dirname(this.db.file));
        const freePages = this.db.handle.pragma('freelist_count', { simple: true }) as number;
        this.drainRoom = s.bavail * s.bsize + freePages * PAGE_SIZE >= reserve.bytes;
      } catch {
        this.drainRoom = true;
      }
    }
    if (!this.drainRoom) {
      throw Object.assign(new Error(`database or disk is full (the ${reserve.bytes} bytes of the released disk reserve are kept for the drain)`), { code: 'SQLITE_FULL' });
    }
  }

  /** The source-number log as of the last commit (read once, then kept up to date). */
  private sourceLog(): { bySource: Map<string, SourceSeq>; rows: number } {
    if (this.log === undefined) {
      const bySource = new Map<string, SourceSeq>();
      let rows = 0;
      for (const value of this.st.readLog.pluck().all() as Array<string | Buffer>) {
        rows++;
        for (const e of decodeSourceLog(value)) keepNewest(bySource, sourceKey(e.bridge, e.originKind, e.originId), e);
      }
      this.log = { bySource, rows };
    }
    return this.log;
  }

  /** One log row for this transaction's numbers; the log is folded into source_seq when it grew long. */
  private appendSourceLog(): void {
    const log = this.sourceLog();
    this.st.appendLog.run(encodeSourceLog(this.toLog.values()));
    log.rows++;
    for (const [key, e] of this.toLog) keepNewest(log.bySource, key, e);
    if (log.rows >= this.sourceLogRows || log.bySource.size >= LOGGED_MAX) {
      for (const e of log.bySource.values()) this.st.saveSource.run(e.bridge, e.originKind, e.originId, e.last);
      this.st.clearLog.run();
      this.log = { bySource: new Map(), rows: 0 };
    }
  }

  /** The seq range of a bridge; undefined for one that never had a row (when `create` is false). */
  private range(bridge: string, create: boolean): BridgeRange | undefined {
    if (this.ranges === undefined) {
      this.ranges = new Map();
      for (const b of this.st.bridges.all() as Array<{ name: string; no: number; lastSeq: number }>) {
        const newest = this.st.newest.pluck().get(b.no * SPAN, (b.no + 1) * SPAN) as number | undefined;
        this.ranges.set(b.name, { no: b.no, top: Math.max(b.lastSeq, newest ?? b.no * SPAN) });
      }
    }
    let r = this.ranges.get(bridge);
    if (r === undefined && create) {
      const no = Math.max(-1, ...[...this.ranges.values()].map((x) => x.no)) + 1; // the first bridge is 0: seqs 1, 2, 3…
      if ((no + 1) * SPAN > Number.MAX_SAFE_INTEGER) throw new OutpostError('STORE_UNAVAILABLE', `too many bridges in the outbox (${no})`);
      this.st.addBridge.run(bridge, no, no * SPAN);
      r = { no, top: no * SPAN };
      this.ranges.set(bridge, r);
    }
    return r;
  }

  insert(row: NewRow): number {
    this.keepDrainRoom();
    const r = this.range(row.bridge, true)!;
    const seq = r.top + 1;
    this.st.insert.run(
      seq,
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
    // Set after the insert: a failed one hands the same seq out again (nobody saw it).
    r.top = seq;
    this.drained.delete(row.bridge);
    return seq;
  }

  remove(bridge: string, seq: number, known?: RemovedRow): RemovedRow | undefined {
    const removed = known ?? (this.st.removed.get(seq, bridge) as RemovedRow | undefined);
    if (removed === undefined || this.st.remove.run(seq).changes === 0) return undefined;
    if (seq === this.range(bridge, false)?.top) this.drained.add(bridge);
    return removed;
  }

  head(bridge: string, limit: number): HeadRow[] {
    const r = this.range(bridge, false);
    return r === undefined ? [] : (this.st.head.all(r.no * SPAN, (r.no + 1) * SPAN, limit) as HeadRow[]);
  }

  read(bridge: string, afterSeq: number, limit: number): StoredRow[] {
    const r = this.range(bridge, false);
    if (r === undefined) return [];
    return this.st.read.all(Math.max(afterSeq, r.no * SPAN), (r.no + 1) * SPAN, limit) as StoredRow[];
  }

  /** Not prepared ahead: a step of the wall clock is rare (stamp-shift.ts). */
  shiftStamps(deltaMs: number, bridge: string, afterSeq: number): void {
    const r = this.range(bridge, false);
    if (r === undefined) return;
    this.db.handle
      .prepare('UPDATE outbox SET created_at = created_at + ?, expires_at = expires_at + ? WHERE seq > ? AND seq < ?')
      .run(deltaMs, deltaMs, Math.max(afterSeq, r.no * SPAN), (r.no + 1) * SPAN);
  }

  newest(bridge: string): number {
    const r = this.range(bridge, false);
    return r === undefined ? 0 : ((this.st.newest.pluck().get(r.no * SPAN, (r.no + 1) * SPAN) as number | undefined) ?? 0);
  }

  lastSourceSeq(bridge: string, originKind: string, originId: string): number {
    const saved = (this.st.lastSource.pluck().get(bridge, originKind, originId) as number | undefined) ?? 0;
    return Math.max(saved, this.sourceLog().bySource.get(sourceKey(bridge, originKind, originId))?.last ?? 0);
  }

  /** Kept for the log row written at the end of the transaction (see appendSourceLog). */
  saveSourceSeq(bridge: string, originKind: string, originId: string, last: number): void {
    keepNewest(this.toLog, sourceKey(bridge, originKind, originId), { bridge, originKind, originId, last });
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

  /**
   * The reserve, released on a full disk, is written again once the disk has room.
   *
   * Then the checkpoint (database.ts, WAL_CHECKPOINT_PAGES): once the WAL has grown past
   * walSettleBytes and the outbox is nearly empty (SETTLED_ROWS, SETTLED_BYTES), the pages its rows
   * freed are given back (`incremental_vacuum` moves the few pages still in use from the
   * end of the file into the holes and truncates it) and the WAL is checkpointed and emptied. The
   * checkpoint copies only pages that are still part of the file, so messages that were
   * buffered and acknowledged since the last one are written once in all, into the WAL.
   * With the uplink up this runs every few MiB of WAL and writes the few pages in use.
   */
  afterCommit(queued: { rows: number; bytes: number }): void {
    if (this.reserve !== undefined && !this.reserve.isHeld) this.reserve.restore(dirname(this.db.file));
    if (queued.rows > SETTLED_ROWS || queued.bytes > SETTLED_BYTES || this.db.file === MEMORY) return;
    if (++this.commitsSinceWalCheck < WAL_CHECK_EVERY) return;
    this.commitsSinceWalCheck = 0;
    if (this.db.diskBytes().wal < this.walSettleBytes) return;
    try {
      this.vacuum();
      // TRUNCATE: the -wal file starts again from nothing, so its size is what was written
      // since (a PASSIVE checkpoint leaves the file at its size, and this would run again
      // every WAL_CHECK_EVERY commits).
      this.db.handle.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // A full disk: the next settled commit tries again (and relieve() has its own checkpoint).
    }
  }

  /**
   * Gives the freed pages back. After a full disk drained, the database file (the backlog's
   * pages, now free) and the WAL fill the disk between them, and moving pages needs WAL
   * frames: then it goes in steps, the WAL emptied before each (its pages written once
   * more). Without that the pages were never given back and the reserve never written
   * again, however empty the outbox.
   */
  private vacuum(): void {
    try {
      this.db.handle.pragma('incremental_vacuum');
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_FULL') throw err;
      // Each step's moved pages (and the freelist pages it rewrites, again whenever the
      // small page cache spills them) fit in the WAL that the checkpoint before it emptied.
      const free = (): number => this.db.handle.pragma('freelist_count', { simple: true }) as number;
      for (let left = free(); left > 0; ) {
        this.db.handle.pragma('wal_checkpoint(TRUNCATE)');
        this.db.handle.pragma(`incremental_vacuum(${VACUUM_STEP_PAGES})`);
        const now = free();
        if (now >= left) break;
        left = now;
      }
    }
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
    if (code === 'SQLITE_READONLY_DBMOVED') {
      return new OutpostError('STORE_UNAVAILABLE', `database file gone: ${what}; ${after}; store.dir was deleted or its disk unmounted or replaced: restart outpost (systemctl restart outpost) to open the store again`, { cause: err });
    }
    return new OutpostError('STORE_UNAVAILABLE', `database error: ${what}; ${after}`, { cause: err });
  }
}

type Statements =
  | 'insert' | 'removed' | 'remove' | 'rowSources' | 'head' | 'newest' | 'read' | 'lastSource' | 'saveSource' | 'totals' | 'bridges' | 'addBridge' | 'saveTop'
  | 'readLog' | 'appendLog' | 'clearLog';

function prepare(db: StoreDatabase): Record<Statements, SqliteStatement> {
  const h = db.handle;
  return {
    insert: h.prepare(
      'INSERT INTO outbox (seq, bridge, topic, payload, qos, retain, props, created_at, expires_at, origin_kind, origin_id, source_seq, bytes) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    // The row's size and source are read before the delete, by its rowid like the delete:
    // DELETE … RETURNING collects its result in an ephemeral table, a b-tree opened and
    // freed (with a page cache allocation of tens of KiB) for every acknowledged message.
    removed: h.prepare('SELECT bytes, origin_kind AS originKind, origin_id AS originId, source_seq AS sourceSeq FROM outbox WHERE seq = ? AND bridge = ?'),
    remove: h.prepare('DELETE FROM outbox WHERE seq = ?'),
    rowSources: h.prepare('SELECT bridge, origin_kind AS originKind, origin_id AS originId, max(source_seq) AS last FROM outbox GROUP BY bridge, origin_kind, origin_id'),
    // Rowid ranges (one bridge's seqs): a seek and a walk along the table b-tree.
    head: h.prepare('SELECT seq, bytes, created_at AS createdAt FROM outbox WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?'),
    newest: h.prepare('SELECT seq FROM outbox WHERE seq > ? AND seq < ? ORDER BY seq DESC LIMIT 1'),
    read: h.prepare(`SELECT ${READ_COLUMNS} FROM outbox WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?`),
    bridges: h.prepare('SELECT name, no, last_seq AS lastSeq FROM outbox_bridges'),
    addBridge: h.prepare('INSERT INTO outbox_bridges (name, no, last_seq) VALUES (?, ?, ?)'),
    saveTop: h.prepare('UPDATE outbox_bridges SET last_seq = max(last_seq, ?) WHERE name = ?'),
    readLog: h.prepare('SELECT entries FROM source_seq_log ORDER BY id'),
    appendLog: h.prepare('INSERT INTO source_seq_log (entries) VALUES (?)'),
    clearLog: h.prepare('DELETE FROM source_seq_log'),
    lastSource: h.prepare('SELECT last_seq FROM source_seq WHERE bridge = ? AND origin_kind = ? AND origin_id = ?'),
    saveSource: h.prepare(
      'INSERT INTO source_seq (bridge, origin_kind, origin_id, last_seq) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (bridge, origin_kind, origin_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)',
    ),
    totals: h.prepare('SELECT bridge, count(*) AS rows, sum(bytes) AS bytes FROM outbox GROUP BY bridge'),
  };
}
