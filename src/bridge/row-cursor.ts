/**
 * Reads one bridge's outbox forward, a page at a time, from a seq and optionally up to
 * a seq (a backlog slice). Rows handed out can be handed back (unread) when they could
 * not be sent yet, so nothing is skipped.
 */
import type { Outbox, OutboxEntry } from '../store/outbox.js';

export class RowCursor {
  private buf: OutboxEntry[] = [];
  private idx = 0;
  /** seq of the last row read from the outbox (buffered or handed out). */
  private after: number;
  /** seq of the last row handed out and not handed back. */
  private handedOut: number;
  /** A bounded cursor is done once it has read past its upper bound. */
  done = false;

  constructor(
    private readonly outbox: Outbox,
    private readonly bridge: string,
    from: number,
    private readonly upTo = Number.POSITIVE_INFINITY,
    private readonly batch = 500,
  ) {
    this.after = from;
    this.handedOut = from;
  }

  /** Where a new cursor must start so that no row this one has not handed out is lost. */
  get position(): number {
    return this.handedOut;
  }

  next(): OutboxEntry | undefined {
    if (this.idx >= this.buf.length) {
      if (this.done) return undefined;
      const rows = this.outbox.read(this.bridge, this.after, this.batch);
      this.idx = 0;
      this.buf = rows;
      if (rows.length === 0) {
        // Rows are appended with ever larger seqs: nothing after `after` now means a
        // bounded slice has nothing left (it only waits when unbounded).
        if (this.upTo !== Number.POSITIVE_INFINITY) this.done = true;
        return undefined;
      }
      this.after = rows[rows.length - 1]!.seq;
      if (this.after >= this.upTo) {
        this.buf = rows.filter((r) => r.seq <= this.upTo);
        this.done = true;
        if (this.buf.length === 0) return undefined;
      }
    }
    const e = this.buf[this.idx++]!;
    this.handedOut = e.seq;
    return e;
  }

  /** The rows read and not handed out yet (a step of the wall clock moves their stamps). */
  get buffered(): readonly OutboxEntry[] {
    return this.buf.slice(this.idx);
  }

  /** Hands a row back: it comes out again next. */
  unread(e: OutboxEntry): void {
    if (this.idx > 0 && this.buf[this.idx - 1] === e) this.idx--;
    else {
      this.buf = [e, ...this.buf.slice(this.idx)];
      this.idx = 0;
    }
    const prev = this.idx > 0 ? this.buf[this.idx - 1] : undefined;
    this.handedOut = prev !== undefined ? prev.seq : e.seq - 1;
  }
}
