/**
 * One group commit, run inside the backend's transaction: deletes (acks, expired rows),
 * the age sweep, then each append in arrival order with its bridge's caps applied.
 * It works on copies of the in-memory counters and applies them only once the
 * transaction committed, so a failed commit (disk full) leaves the counters true.
 *
 * Per-source sequence numbers (outpost-seq) must never be handed out twice, across
 * crashes too. The last one of a source lives in its newest row while that row is in the
 * outbox, so it is written to the source table only when that row is deleted (or when
 * the cache of sources is emptied): appends touch no source-table pages, which would
 * otherwise be most of the bytes a commit writes (one page per source in the batch).
 * At start the cache is seeded from the rows (highest number per source); a source that
 * has no rows left is looked up in the source table.
 */
import type { HeadRow, NewRow, OutboxBackend, RemovedRow, SourceSeq } from './backend.js';
import type { OutboxDropReason, OutboxLimits } from './outbox.js';

export interface BridgeState {
  limits: OutboxLimits;
  rows: number;
  bytes: number;
  /** The oldest row; null = not known (ask the backend), undefined = the queue is empty. */
  oldestSeq: number | undefined | null;
  oldestAt: number | undefined | null;
  drops: Partial<Record<OutboxDropReason, number>>;
}

/** An append waiting for its commit; its row's sourceSeq is filled in by the commit. */
export interface PendingAppend {
  bridge: string;
  row: NewRow;
  /** Appends of one message to several bridges share a group: reject refuses all of them (append-groups.ts). */
  group?: object;
  resolve(): void;
  reject(err: unknown): void;
}

/** Whether some bridge may hold rows past its max age (saves empty sweep transactions). */
export function mayHoldExpired(states: Iterable<BridgeState>, now: number): boolean {
  for (const st of states) {
    const { maxAgeMs } = st.limits;
    if (st.rows > 0 && Number.isFinite(maxAgeMs) && (st.oldestAt === null || (st.oldestAt ?? now) < now - maxAgeMs)) return true;
  }
  return false;
}

/** Rows and bytes (payload and topic) of all bridges. */
export function queuedTotals(states: Iterable<BridgeState>): { rows: number; bytes: number } {
  const t = { rows: 0, bytes: 0 };
  for (const st of states) {
    t.rows += st.rows;
    t.bytes += st.bytes;
  }
  return t;
}

/** 'withheld': not stored because another bridge's reject refused the same message (append-groups.ts). */
export type Outcome = 'stored' | 'full-newest' | 'full-rejected' | 'withheld';

type Working = Omit<BridgeState, 'limits' | 'drops'> & { drops: Partial<Record<OutboxDropReason, number>> };

/** Victims fetched per query while drop-oldest makes room. */
const HEAD_CHUNK = 64;
/** Distinct sources whose last sequence number stays cached (the table holds them all). */
const SOURCE_CACHE_MAX = 10_000;

export const sourceKey = (bridge: string, kind: string, id: string): string => `${bridge}\0${kind}\0${id}`;

export class CommitTx {
  private readonly working = new Map<string, Working>();
  /** Sources this commit handed numbers to. */
  private readonly sources = new Map<string, SourceSeq>();
  /** Sources whose last number must be saved in this commit (their newest row is deleted). */
  private readonly toSave = new Map<string, SourceSeq>();
  private evictCache = false;
  /** Bridges that got at least one new row (their watchers run after the commit). */
  readonly added = new Set<string>();
  /** Rows this commit inserted and deleted, in order (for the outbox's committed tails). */
  readonly inserted: NewRow[] = [];
  readonly deleted: Array<{ bridge: string; seq: number }> = [];

  constructor(
    private readonly backend: OutboxBackend,
    private readonly stateOf: (bridge: string) => BridgeState,
    private readonly sourceCache: Map<string, SourceSeq>,
    private readonly now: number,
    /** The committed copy of a row, when the caller holds it (saves the backend a read per delete). */
    private readonly known: (bridge: string, seq: number) => RemovedRow | undefined = () => undefined,
  ) {}

  /** Deletes one row; `reason` undefined means acknowledged by the cloud (not a drop). */
  remove(bridge: string, seq: number, reason: OutboxDropReason | undefined): void {
    const r = this.backend.remove(bridge, seq, this.known(bridge, seq));
    if (r === undefined) return;
    this.deleted.push({ bridge, seq });
    this.removed(bridge, seq, r.bytes, reason);
    const key = sourceKey(bridge, r.originKind, r.originId);
    const last = this.sources.get(key)?.last ?? this.sourceCache.get(key)?.last;
    if (last === undefined || r.sourceSeq >= last) {
      this.toSave.set(key, { bridge, originKind: r.originKind, originId: r.originId, last: Math.max(r.sourceSeq, last ?? 0) });
    }
  }

  /** Drops the rows of `bridge` older than its max age, oldest first. */
  sweepAge(bridge: string): void {
    const { maxAgeMs } = this.stateOf(bridge).limits;
    if (!Number.isFinite(maxAgeMs)) return;
    const cutoff = this.now - maxAgeMs;
    for (;;) {
      const w = this.work(bridge);
      if (w.rows === 0 || (this.oldestAt(bridge, w) ?? Infinity) >= cutoff) return;
      // createdAt grows with seq (unless the wall clock stepped back; read() catches those).
      const head = this.backend.head(bridge, HEAD_CHUNK);
      let young = false;
      for (const r of head) {
        if (r.createdAt >= cutoff) {
          young = true;
          break;
        }
        this.remove(bridge, r.seq, 'expired-age');
      }
      if (young || head.length < HEAD_CHUNK) return;
    }
  }

  append(p: PendingAppend): Outcome {
    const { limits } = this.stateOf(p.bridge);
    const w = this.work(p.bridge);
    const size = p.row.bytes;
    const fits = () => w.rows + 1 <= limits.maxRows && w.bytes + size <= limits.maxBytes;
    if (!fits()) {
      // A message bigger than the whole cap can never fit: drop-oldest must not empty
      // the queue for it, so it is refused like drop-newest (or rejected).
      if (limits.whenFull === 'reject') return this.drop(w, 'full-rejected');
      if (limits.whenFull === 'drop-newest' || size > limits.maxBytes) return this.drop(w, 'full-newest');
      while (!fits()) {
        const head: HeadRow[] = this.backend.head(p.bridge, HEAD_CHUNK);
        if (head.length === 0) break;
        for (const r of head) {
          if (fits()) break;
          this.remove(p.bridge, r.seq, 'full-oldest');
        }
      }
    }
    p.row.sourceSeq = this.nextSourceSeq(p.bridge, p.row.originKind, p.row.originId);
    const seq = (p.row.seq = this.backend.insert(p.row));
    this.inserted.push(p.row);
    if (w.rows === 0) {
      w.oldestSeq = seq;
      w.oldestAt = p.row.createdAt;
    }
    w.rows++;
    w.bytes += size;
    this.added.add(p.bridge);
    return 'stored';
  }

  /** Whether the bridge of `p` would refuse it with when_full: reject (changes nothing). */
  refuses(p: PendingAppend): boolean {
    const { limits } = this.stateOf(p.bridge);
    const w = this.work(p.bridge);
    return limits.whenFull === 'reject' && (w.rows + 1 > limits.maxRows || w.bytes + p.row.bytes > limits.maxBytes);
  }

  /** Counts `p` as refused by its bridge's reject policy, without storing it. */
  refuse(p: PendingAppend): Outcome {
    return this.drop(this.work(p.bridge), 'full-rejected');
  }

  /** Counts a store-error for each append of a failed batch (counters only, nothing was written). */
  static countFailed(stateOf: (bridge: string) => BridgeState, appends: readonly PendingAppend[]): void {
    for (const a of appends) {
      const d = stateOf(a.bridge).drops;
      d['store-error'] = (d['store-error'] ?? 0) + 1;
    }
  }

  /** Last step inside the transaction: save the source numbers that leave the outbox with their rows. */
  finish(): void {
    // The cache is about to be emptied: every number it alone knows goes to the table first.
    this.evictCache = this.sourceCache.size + this.sources.size > SOURCE_CACHE_MAX;
    if (this.evictCache) {
      for (const [key, s] of this.sourceCache) if (!this.sources.has(key)) this.toSave.set(key, s);
      for (const [key, s] of this.sources) this.toSave.set(key, s);
    }
    for (const s of this.toSave.values()) this.backend.saveSourceSeq(s.bridge, s.originKind, s.originId, s.last);
  }

  /** After the commit: the working copies become the truth. */
  apply(): void {
    for (const [bridge, w] of this.working) {
      const st = this.stateOf(bridge);
      st.rows = w.rows;
      st.bytes = w.bytes;
      st.oldestSeq = w.oldestSeq;
      st.oldestAt = w.oldestAt;
      for (const [reason, n] of Object.entries(w.drops) as Array<[OutboxDropReason, number]>) {
        st.drops[reason] = (st.drops[reason] ?? 0) + n;
      }
    }
    if (this.evictCache) this.sourceCache.clear();
    else for (const [key, s] of this.sources) this.sourceCache.set(key, s);
  }

  private drop(w: Working, reason: OutboxDropReason): Outcome {
    w.drops[reason] = (w.drops[reason] ?? 0) + 1;
    return reason === 'full-rejected' ? 'full-rejected' : 'full-newest';
  }

  private removed(bridge: string, seq: number, bytes: number, reason: OutboxDropReason | undefined): void {
    const w = this.work(bridge);
    w.rows--;
    w.bytes -= bytes;
    if (w.rows <= 0) {
      w.rows = 0;
      w.bytes = 0;
      w.oldestSeq = undefined;
      w.oldestAt = undefined;
    } else if (w.oldestSeq === null || w.oldestSeq === seq) {
      w.oldestSeq = null;
      w.oldestAt = null;
    }
    if (reason !== undefined) w.drops[reason] = (w.drops[reason] ?? 0) + 1;
  }

  private oldestAt(bridge: string, w: Working): number | undefined {
    if (w.oldestAt === null) {
      const head = this.backend.head(bridge, 1)[0];
      w.oldestSeq = head?.seq;
      w.oldestAt = head?.createdAt;
    }
    return w.oldestAt;
  }

  private nextSourceSeq(bridge: string, kind: string, id: string): number {
    const key = sourceKey(bridge, kind, id);
    let s = this.sources.get(key);
    if (s === undefined) {
      const last = this.sourceCache.get(key)?.last ?? this.backend.lastSourceSeq(bridge, kind, id);
      s = { bridge, originKind: kind, originId: id, last };
      this.sources.set(key, s);
    }
    return ++s.last;
  }

  private work(bridge: string): Working {
    let w = this.working.get(bridge);
    if (w === undefined) {
      const st = this.stateOf(bridge);
      w = { rows: st.rows, bytes: st.bytes, oldestSeq: st.oldestSeq, oldestAt: st.oldestAt, drops: {} };
      this.working.set(bridge, w);
    }
    return w;
  }
}
