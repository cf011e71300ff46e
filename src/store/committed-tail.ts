/**
 * The newest committed rows of one bridge, kept in memory after their commit so that a
 * forwarder keeping up with the appends reads them without a query: at 1,000 msg/s the
 * read-back of rows just written (a SELECT, then a Buffer and an object per column) was
 * a twentieth of the gateway's CPU.
 *
 * Invariant: every committed row of the bridge with seq ≥ `from` is in `rows`, unless it
 * was deleted since (then its seq is in `gone`). A read after a seq ≥ from - 1 is
 * therefore answered here completely; an older one goes to the backend.
 *
 * Bounded: at most `maxRows` rows and `maxBytes` record bytes; the oldest leave first
 * (and then come from the backend again). Rows deleted at the front (the cloud's acks,
 * which come in order) leave at once, so in steady state the tail holds about the
 * bridge's inflight window.
 */
import type { NewRow, StoredRow } from './backend.js';

/** Bounds of each bridge's tail: a few commits' worth at 1,000 msg/s. */
const TAIL_ROWS = 2048;
const TAIL_BYTES = 512 * 1024;

/** The committed tails of every bridge of one outbox. */
export class CommittedTails {
  private readonly byBridge = new Map<string, CommittedTail>();

  /** Rows of `bridge` after `afterSeq`, or undefined when the backend must answer (see CommittedTail.read). */
  read(bridge: string, afterSeq: number, limit: number): StoredRow[] | undefined {
    return this.byBridge.get(bridge)?.read(afterSeq, limit);
  }

  /** What a commit wrote: its rows first, then its deletes (which may include some of them). */
  committed(inserted: ReadonlyArray<{ seq: number; row: NewRow }>, deleted: ReadonlyArray<{ bridge: string; seq: number }>): void {
    for (const { seq, row } of inserted) {
      let t = this.byBridge.get(row.bridge);
      if (t === undefined) this.byBridge.set(row.bridge, (t = new CommittedTail(TAIL_ROWS, TAIL_BYTES)));
      const { topic, payload, qos, retain, props, createdAt, expiresAt, originKind, originId, sourceSeq } = row;
      t.added({ seq, topic, payload, qos, retain, props, createdAt, expiresAt, originKind, originId, sourceSeq }, row.bytes);
    }
    for (const { bridge, seq } of deleted) this.byBridge.get(bridge)?.removed(seq);
  }
}

export class CommittedTail {
  private rows: Array<{ row: StoredRow; bytes: number }> = [];
  private head = 0;
  private from = Number.POSITIVE_INFINITY;
  private bytes = 0;
  private readonly gone = new Set<number>();

  constructor(
    private readonly maxRows: number,
    private readonly maxBytes: number,
  ) {}

  /** Rows held (deleted ones included until they leave). */
  get size(): number {
    return this.rows.length - this.head;
  }

  /** A row was committed; seqs only grow. */
  added(row: StoredRow, bytes: number): void {
    if (this.size === 0 && this.from === Number.POSITIVE_INFINITY) this.from = row.seq;
    this.rows.push({ row, bytes });
    this.bytes += bytes;
    while (this.size > this.maxRows || (this.bytes > this.maxBytes && this.size > 1)) this.evict();
  }

  /** A row's delete was committed. */
  removed(seq: number): void {
    if (seq < this.from || this.size === 0 || seq > this.rows[this.rows.length - 1]!.row.seq) return;
    this.gone.add(seq);
    while (this.size > 0 && this.gone.has(this.rows[this.head]!.row.seq)) this.evict();
  }

  /** Up to `limit` rows with seq > afterSeq, oldest first; undefined when older rows may be missing here. */
  read(afterSeq: number, limit: number): StoredRow[] | undefined {
    if (afterSeq + 1 < this.from) return undefined;
    const out: StoredRow[] = [];
    // First row with seq > afterSeq (binary search; the rows are in seq order).
    let lo = this.head;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rows[mid]!.row.seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.rows.length && out.length < limit; i++) {
      const r = this.rows[i]!.row;
      if (!this.gone.has(r.seq)) out.push(r);
    }
    return out;
  }

  private evict(): void {
    const e = this.rows[this.head]!;
    this.rows[this.head++] = undefined as never;
    this.bytes -= e.bytes;
    this.gone.delete(e.row.seq);
    this.from = e.row.seq + 1;
    if (this.head > 1024 && this.head * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.head);
      this.head = 0;
    }
  }
}
