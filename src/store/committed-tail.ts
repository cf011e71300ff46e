/**
 * The newest committed rows of one bridge, kept in memory after their commit so that a
 * forwarder keeping up with the appends reads them without a query: at 1,000 msg/s the
 * read-back of rows just written (a SELECT, then a Buffer and an object per column) was
 * a twentieth of the gateway's CPU.
 *
 * Invariant: every committed row of the bridge with seq ≥ `from` is in `rows`, unless it
 * was deleted since (then it is marked in `gone`). A read after a seq ≥ from - 1 is
 * therefore answered here completely; an older one goes to the backend.
 *
 * Bounded: at most `maxRows` rows and `maxBytes` record bytes; the oldest leave first
 * (and then come from the backend again). Rows deleted at the front (the cloud's acks,
 * which come in order) leave at once, so in steady state the tail holds about the
 * bridge's inflight window.
 */
import type { NewRow, StoredRow } from './backend.js';
import { shiftRowStamps } from './stamp-shift.js';

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

  /** The committed row `seq` of `bridge`, when the tail holds it. */
  find(bridge: string, seq: number): NewRow | undefined {
    return this.byBridge.get(bridge)?.find(seq);
  }

  /** Moves the stamps of every held row (a step of the wall clock; see outbox-core clockStepped). */
  shift(deltaMs: number): void {
    for (const t of this.byBridge.values()) t.shift(deltaMs);
  }

  /**
   * What a commit wrote: its rows first (the inserted objects themselves, their seq filled
   * in), then its deletes (which may include some of them).
   */
  committed(inserted: readonly NewRow[], deleted: ReadonlyArray<{ bridge: string; seq: number }>): void {
    for (const row of inserted) {
      let t = this.byBridge.get(row.bridge);
      if (t === undefined) this.byBridge.set(row.bridge, (t = new CommittedTail(TAIL_ROWS, TAIL_BYTES)));
      t.added(row);
    }
    for (const { bridge, seq } of deleted) this.byBridge.get(bridge)?.removed(seq);
  }
}

export class CommittedTail {
  /** In seq order; `gone[i]` marks rows[i] deleted (it stays until it reaches the front). */
  private rows: NewRow[] = [];
  private gone: boolean[] = [];
  private head = 0;
  private from = Number.POSITIVE_INFINITY;
  private bytes = 0;

  constructor(
    private readonly maxRows: number,
    private readonly maxBytes: number,
  ) {}

  /** Rows held (deleted ones included until they leave). */
  get size(): number {
    return this.rows.length - this.head;
  }

  /** A row was committed; seqs only grow. */
  added(row: NewRow): void {
    if (this.size === 0 && this.from === Number.POSITIVE_INFINITY) this.from = row.seq;
    this.rows.push(row);
    this.gone.push(false);
    this.bytes += row.bytes;
    while (this.size > this.maxRows || (this.bytes > this.maxBytes && this.size > 1)) this.evict();
  }

  shift(deltaMs: number): void {
    for (let i = this.head; i < this.rows.length; i++) shiftRowStamps(this.rows[i]!, deltaMs);
  }

  /** A row's delete was committed. */
  removed(seq: number): void {
    const i = this.indexOf(seq);
    if (i < 0) return;
    this.gone[i] = true;
    while (this.size > 0 && this.gone[this.head]) this.evict();
  }

  /** The row `seq` while it is held and not deleted. */
  find(seq: number): NewRow | undefined {
    const i = this.indexOf(seq);
    return i < 0 || this.gone[i] ? undefined : this.rows[i];
  }

  /** Up to `limit` rows with seq > afterSeq, oldest first; undefined when older rows may be missing here. */
  read(afterSeq: number, limit: number): StoredRow[] | undefined {
    if (afterSeq + 1 < this.from) return undefined;
    const out: StoredRow[] = [];
    for (let i = this.firstAfter(afterSeq); i < this.rows.length && out.length < limit; i++) {
      if (!this.gone[i]) out.push(this.rows[i]!);
    }
    return out;
  }

  /** Index of the first held row with seq > `seq` (binary search; the rows are in seq order). */
  private firstAfter(seq: number): number {
    let lo = this.head;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rows[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOf(seq: number): number {
    const i = this.firstAfter(seq - 1);
    return i < this.rows.length && this.rows[i]!.seq === seq ? i : -1;
  }

  private evict(): void {
    const e = this.rows[this.head]!;
    this.rows[this.head] = undefined as never;
    this.head++;
    this.bytes -= e.bytes;
    this.from = e.seq + 1;
    if (this.head > 1024 && this.head * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.head);
      this.gone = this.gone.slice(this.head);
      this.head = 0;
    }
  }
}
