/**
 * When the next group commit is due: at once for a publisher that waits for its
 * acknowledgement, later for one that does not, so that many slow sources share a commit.
 *
 * A commit costs whole pages of WAL and one fsync however few messages it holds: at
 * 1,000 msg/s from a thousand sensors, a commit every 2 ms writes 2 messages per 4 KiB
 * page, some 20 times the bytes of the messages themselves (flash wear). Holding those
 * messages for up to `commit_delay` costs their publishers nothing: each sends its next
 * reading on its own period, not when the acknowledgement comes (a sleeping sensor too: it
 * wakes on its period). A publisher that does wait for each acknowledgement before the next
 * message (a sequential or window-limited publisher, a test script) would lose its
 * throughput to the same delay.
 *
 * Which kind a publisher is shows in when its messages arrive: a waiting publisher sends
 * its next message right after the commit that answered its previous one. The pacer keeps,
 * per origin, a moving average of that gap (capped at the delay) and calls the origin
 * prompt while the average is under a quarter of the delay. Only the first message after
 * a commit counts: one that arrives while the origin already has a message in the batch
 * was not waiting for anything. An origin it does not know (new, or forgotten) is prompt,
 * so a new publisher's first message is answered at once.
 *
 * Memory is bounded: at most `maxOrigins` origins are remembered, least recently seen
 * forgotten first (a forgotten origin only costs one prompt commit).
 */
export interface CommitPacerOptions {
  /** store.commit_delay: how long a message whose publisher is not waiting may be held (ms); 0 = never held. */
  delayMs: number;
  /** Origins remembered (default 4,096). */
  maxOrigins?: number;
}

interface OriginState {
  /** Moving average of the gap between an answer and the next message (ms). */
  gap: number;
  /** performance.now() of the commit that answered its last message; undefined while one is pending. */
  answeredAt: number | undefined;
}

/** Weight of the newest gap in the moving average. */
const ALPHA = 0.3;

export class CommitPacer {
  private readonly origins = new Map<string, OriginState>();
  /** Origins with a message in the pending batch. */
  private pending = new Set<string>();
  private readonly maxOrigins: number;

  constructor(private readonly opts: CommitPacerOptions) {
    this.maxOrigins = opts.maxOrigins ?? 4096;
  }

  get delayMs(): number {
    return this.opts.delayMs;
  }

  /** Origins remembered now (for tests of the bound). */
  get size(): number {
    return this.origins.size;
  }

  /**
   * A message (or a wait for the commit) of `origin` joined the pending batch at `now`
   * (performance.now()). Returns whether its commit should come at once. Without an origin
   * (a SUBACK waiting, a flush) it is always prompt.
   */
  arrive(origin: string | undefined, now: number): boolean {
    if (this.opts.delayMs <= 0 || origin === undefined) return true;
    let s = this.origins.get(origin);
    if (s === undefined) {
      s = { gap: 0, answeredAt: undefined };
      if (this.origins.size >= this.maxOrigins) {
        const oldest = this.origins.keys().next().value as string;
        this.origins.delete(oldest);
        this.pending.delete(oldest);
      }
    } else {
      this.origins.delete(origin); // re-inserted below: the map's order is least recently seen first
      if (!this.pending.has(origin) && s.answeredAt !== undefined) {
        const gap = Math.min(Math.max(0, now - s.answeredAt), this.opts.delayMs);
        s.gap += ALPHA * (gap - s.gap);
      }
    }
    this.origins.set(origin, s);
    this.pending.add(origin);
    s.answeredAt = undefined;
    return s.gap < this.opts.delayMs / 4;
  }

  /** The commit holding everything that arrived so far settled at `now`: its publishers were answered. */
  answered(now: number): void {
    if (this.pending.size === 0) return;
    for (const o of this.pending) {
      const s = this.origins.get(o);
      if (s !== undefined) s.answeredAt = now;
    }
    this.pending = new Set();
  }
}
