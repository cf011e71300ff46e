/**
 * The outbox without durability: same group commit, caps, policies and counters as
 * SqliteOutbox (both are GroupCommitOutbox), rows kept in maps. For tests of the bridge
 * and as the reference the contract suite compares against. Nothing survives a restart.
 */
import { OutpostError } from '../core/errors.js';
import type { HeadRow, NewRow, OutboxBackend, RemovedRow, SourceSeq, StoredRow } from './backend.js';
import { GroupCommitOutbox, type OutboxOptions } from './outbox-core.js';
import { shiftRowStamps } from './stamp-shift.js';

export class MemoryOutbox extends GroupCommitOutbox {
  constructor(opts: OutboxOptions & { storeId?: string }) {
    super(new MemoryBackend(opts.storeId ?? 'memory'), opts);
  }
}

type Row = NewRow & { seq: number };

class MemoryBackend implements OutboxBackend {
  /** Per bridge, rows by seq; a Map iterates in insertion order, which is seq order. */
  private readonly rows = new Map<string, Map<number, Row>>();
  private readonly sources = new Map<string, number>();
  private lastSeq = 0;
  /** Inverse operations of the running transaction, replayed backwards if it throws. */
  private undo: Array<() => void> | undefined;

  constructor(readonly storeId: string) {}

  transaction(fn: () => void): void {
    this.undo = [];
    try {
      fn();
    } catch (err) {
      for (const u of this.undo.reverse()) u();
      throw err;
    } finally {
      this.undo = undefined;
    }
  }

  insert(row: NewRow): number {
    const seq = ++this.lastSeq; // like AUTOINCREMENT: never reused, even after deletes
    const r: Row = { ...row, seq };
    const q = this.queue(row.bridge);
    q.set(seq, r);
    this.undo?.push(() => {
      q.delete(seq);
      this.lastSeq = seq - 1;
    });
    return seq;
  }

  remove(bridge: string, seq: number): RemovedRow | undefined {
    const q = this.rows.get(bridge);
    const r = q?.get(seq);
    if (q === undefined || r === undefined) return undefined;
    q.delete(seq);
    // Re-inserting would put it at the end of the Map: rebuild the order on undo.
    this.undo?.push(() => {
      const all = [...q.values(), r].sort((a, b) => a.seq - b.seq);
      q.clear();
      for (const x of all) q.set(x.seq, x);
    });
    return { bytes: r.bytes, originKind: r.originKind, originId: r.originId, sourceSeq: r.sourceSeq };
  }

  newest(bridge: string): number {
    let last = 0;
    for (const seq of this.rows.get(bridge)?.keys() ?? []) last = seq;
    return last;
  }

  head(bridge: string, limit: number): HeadRow[] {
    const out: HeadRow[] = [];
    for (const r of this.rows.get(bridge)?.values() ?? []) {
      if (out.length >= limit) break;
      out.push({ seq: r.seq, bytes: r.bytes, createdAt: r.createdAt });
    }
    return out;
  }

  read(bridge: string, afterSeq: number, limit: number): StoredRow[] {
    const out: StoredRow[] = [];
    for (const r of this.rows.get(bridge)?.values() ?? []) {
      if (out.length >= limit) break;
      if (r.seq <= afterSeq) continue;
      // Copies, as a database would hand out: readers cannot change what is stored.
      out.push({
        seq: r.seq,
        topic: r.topic,
        payload: Buffer.from(r.payload),
        qos: r.qos,
        retain: r.retain,
        props: r.props,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
        originKind: r.originKind,
        originId: r.originId,
        sourceSeq: r.sourceSeq,
      });
    }
    return out;
  }

  lastSourceSeq(bridge: string, originKind: string, originId: string): number {
    return this.sources.get(`${bridge}\0${originKind}\0${originId}`) ?? 0;
  }

  saveSourceSeq(bridge: string, originKind: string, originId: string, last: number): void {
    const key = `${bridge}\0${originKind}\0${originId}`;
    const before = this.sources.get(key);
    if (before !== undefined && before >= last) return;
    this.sources.set(key, last);
    this.undo?.push(() => (before === undefined ? this.sources.delete(key) : this.sources.set(key, before)));
  }

  sourceSeqsInRows(): SourceSeq[] {
    const max = new Map<string, SourceSeq>();
    for (const [bridge, q] of this.rows) {
      for (const r of q.values()) {
        const key = `${bridge}\0${r.originKind}\0${r.originId}`;
        const m = max.get(key);
        if (m === undefined) max.set(key, { bridge, originKind: r.originKind, originId: r.originId, last: r.sourceSeq });
        else m.last = Math.max(m.last, r.sourceSeq);
      }
    }
    return [...max.values()];
  }

  shiftStamps(deltaMs: number, bridge: string, afterSeq: number): void {
    const move = (d: number) => {
      for (const r of this.rows.get(bridge)?.values() ?? []) if (r.seq > afterSeq) shiftRowStamps(r, d);
    };
    move(deltaMs);
    this.undo?.push(() => move(-deltaMs));
  }

  totals(): Array<{ bridge: string; rows: number; bytes: number }> {
    return [...this.rows].map(([bridge, q]) => ({ bridge, rows: q.size, bytes: [...q.values()].reduce((n, r) => n + r.bytes, 0) }));
  }

  storeError(err: unknown, messages: number): OutpostError {
    return new OutpostError('STORE_UNAVAILABLE', `memory outbox could not commit ${messages} message(s): ${(err as Error).message}`, { cause: err });
  }

  private queue(bridge: string): Map<number, Row> {
    let q = this.rows.get(bridge);
    if (q === undefined) this.rows.set(bridge, (q = new Map()));
    return q;
  }
}
