/**
 * The Outbox on top of any OutboxBackend: group commit, caps and drop policies,
 * in-memory counters, watchers. SqliteOutbox and MemoryOutbox are this class with a
 * different backend.
 *
 *   append ─┐                      ┌─ one transaction: deletes → age sweep → appends (caps)
 *   ack ────┼→ pending (in memory) ┤  next tick, and at most one per commit_window
 *   read ───┘  (expired rows)      └─ commit ok → resolve appends, run watchers
 *                                     commit failed → reject appends (STORE_FULL…), keep deletes
 *
 * Nothing is resolved before its transaction committed: the publisher's PUBACK waits
 * for this promise (DESIGN §4, persist before you acknowledge).
 *
 * Other writers of the same database (the session and retained journal) join these
 * commits as participants: their batch is written in the same transaction, after the
 * outbox's, so a publish that is both bridged and queued for a persistent session
 * costs one fsync, and the commit window bounds the fsync rate of all of them.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import { originKey, type Message } from '../core/message.js';
import type { ProgressProbe } from '../core/progress.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
import type { NewRow, OutboxBackend, SourceSeq } from './backend.js';
import { appendAll, settle } from './append-groups.js';
import { CommitPacer } from './commit-pacer.js';
import type { CommitBatch, CommitParticipant, CommitJoin } from './commit-participant.js';
import { CommittedTails } from './committed-tail.js';
import { shiftRowStamps, StampShift } from './stamp-shift.js';
import { CommitTx, mayHoldExpired, queuedTotals, sourceKey, type BridgeState, type Outcome, type PendingAppend } from './commit-tx.js';
import type { Outbox, OutboxDropReason, OutboxEntry, OutboxLimits, OutboxStats } from './outbox.js';
import { encodeProperties, recordBytes, toEntry } from './record.js';

export type { CommitBatch, CommitJoin, CommitParticipant } from './commit-participant.js';

export interface OutboxOptions {
  clock: Clock;
  log: Logger;
  /** Shortest time between two commits (store.commit_window): 0 = commit on the next tick. */
  commitWindowMs: number;
  /**
   * How long work nobody waits for may be held to share a commit (store.commit_delay;
   * see commit-pacer.ts). 0 (the default) = every commit as soon as commitWindowMs allows.
   */
  commitDelayMs?: number;
  /** How often rows past max_age are swept when nobody reads them (default 60 s). */
  sweepIntervalMs?: number;
  /** Delay before a failed commit's deletes are tried again when no append comes (default 1 s). */
  retryMs?: number;
  /** Called after each commit (for metrics): messages appended, rows deleted, transaction time. */
  onCommit?: (info: { appends: number; deletes: number; ms: number }) => void;
  /** Called after each failed commit, with the error its waiters were given (commit-health.ts). */
  onCommitFailed?: (err: OutpostError) => void;
}

/** A bridge that was never configured keeps everything. */
const UNLIMITED: OutboxLimits = { maxBytes: Infinity, maxRows: Infinity, maxAgeMs: Infinity, whenFull: 'drop-oldest' };

type Waiter = { resolve: () => void; reject: (err: unknown) => void };

export class GroupCommitOutbox implements Outbox {
  private readonly bridges = new Map<string, BridgeState>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly sourceCache = new Map<string, SourceSeq>();
  /** Per bridge, its newest committed rows (see committed-tail.ts). */
  private readonly tails = new CommittedTails();
  private readonly committedRow = (bridge: string, seq: number): NewRow | undefined => this.tails.find(bridge, seq);
  private appends: PendingAppend[] = [];
  private readonly participants: CommitParticipant[] = [];
  /** Rows to delete in the next commit: seq → bridge and why (undefined = acked). */
  private deletes = new Map<number, { bridge: string; reason: OutboxDropReason | undefined }>();
  private sweepDue = false;
  private waiters: Waiter[] = [];
  /** Whoever waits for the deletes of the acks so far (see ack()); carried over a failed commit, never rejected. */
  private ackWaiters: Array<() => void> = [];
  /** The promise every ack of the pending batch gets (one per commit, not one per ack). */
  private ackBatch: Promise<void> | undefined;
  /** Per bridge, the pending-delete record of an ack (shared: acks are most of the deletes). */
  private readonly ackRecords = new Map<string, { bridge: string; reason: undefined }>();
  private timer: { kind: 'immediate' | 'timeout' | 'retry'; handle: NodeJS.Immediate | NodeJS.Timeout; due: number } | undefined;
  private readonly pacer: CommitPacer;
  /** performance.now() when the first work of the pending batch came. */
  private batchSince: number | undefined;
  private sweepTimer: { cancel(): void } | undefined;
  private loaded = false;
  private closed = false;
  /** One "disk full" line per 10 s; the ones in between are counted in the next. */
  private readonly errorLog: LogRateLimiter;
  private commitCount = 0;
  /** The last commit failed for want of space: deletes commit on their own until appends succeed again. */
  private diskWasFull = false;
  /** performance.now() when the last commit started. */
  private lastCommitAt = -Infinity;
  /** Clock ms of the last turn of the committer (a commit, a retry, an idle pass). */
  private lastTurnAt = 0;
  private readonly log: Logger;
  private readonly shift = new StampShift();

  constructor(
    private readonly backend: OutboxBackend,
    private readonly opts: OutboxOptions,
  ) {
    this.log = opts.log;
    this.errorLog = new LogRateLimiter(opts.clock, 10_000, 1);
    this.pacer = new CommitPacer({ delayMs: opts.commitDelayMs ?? 0 });
  }

  /** Transactions committed so far (tests check that appends share one). */
  get commits(): number {
    return this.commitCount;
  }

  configure(bridge: string, limits: OutboxLimits): void {
    this.state(bridge).limits = { ...limits };
    if (Number.isFinite(limits.maxAgeMs) && this.sweepTimer === undefined && !this.closed) {
      this.sweepTimer = this.opts.clock.setInterval(() => {
        this.sweepDue = true;
        this.schedule(false);
      }, this.opts.sweepIntervalMs ?? 60_000);
    }
  }

  /** The wall clock stepped (core/clock-steps.ts): this run's stamps move, in memory now, on disk in the next commit (stamp-shift.ts). */
  clockStepped(deltaMs: number): void {
    if (this.closed || deltaMs === 0) return;
    for (const { row } of this.appends) shiftRowStamps(row, deltaMs);
    this.tails.shift(deltaMs);
    for (const st of this.bridges.values()) if (typeof st.oldestAt === 'number') st.oldestAt += deltaMs;
    this.shift.pending += deltaMs;
    this.schedule(true);
  }

  /** Lets `p` write in the same transactions as the outbox (see the file comment). */
  join(p: CommitParticipant): CommitJoin {
    this.participants.push(p);
    return {
      schedule: (wait) => {
        if (this.closed) return false;
        this.schedule(wait === undefined ? false : this.pacer.arrive(wait.origin, performance.now()));
        return true;
      },
      leave: () => {
        const i = this.participants.indexOf(p);
        if (i >= 0) this.participants.splice(i, 1);
      },
    };
  }

  append(bridge: string, msg: Message, group?: object): Promise<void> {
    if (this.closed) return Promise.reject(new OutpostError('STORE_UNAVAILABLE', 'the outbox is closed; the message was not stored'));
    this.state(bridge);
    const props = encodeProperties(msg.properties);
    return new Promise<void>((resolve, reject) => {
      this.appends.push({
        bridge,
        group,
        resolve,
        reject,
        row: {
          seq: 0, // assigned inside the commit
          bridge,
          topic: msg.topic,
          // Copied: the caller may reuse its buffer once append returned.
          payload: Buffer.from(msg.payload),
          qos: msg.qos,
          retain: msg.retain ? 1 : 0,
          props,
          createdAt: this.opts.clock.now(),
          expiresAt: msg.expiresAt ?? null,
          originKind: msg.origin.kind,
          originId: msg.origin.id,
          sourceSeq: 0, // assigned inside the commit
          bytes: recordBytes(msg.topic, msg.payload, props),
        },
      });
      this.schedule(this.pacer.arrive(originKey(msg.origin), performance.now()));
    });
  }

  read(bridge: string, afterSeq: number, limit: number): OutboxEntry[] {
    if (this.closed || limit <= 0) return [];
    const { maxAgeMs } = this.state(bridge).limits;
    const now = this.opts.clock.now();
    const out: OutboxEntry[] = [];
    let cursor = afterSeq;
    let dropped = false;
    // Every row here is committed: writes happen only inside commit(), synchronously.
    for (;;) {
      const want = limit - out.length;
      const tail = this.tails.read(bridge, cursor, want);
      const rows = tail ?? this.backend.read(bridge, cursor, want);
      for (const r of rows) {
        cursor = r.seq;
        if (this.deletes.has(r.seq)) continue; // acked or dropped, deleted at the next commit
        const shift = tail === undefined ? this.shift.rowShift(bridge, r.seq) : 0; // the tails moved already
        const expiresAt = r.expiresAt === null ? null : r.expiresAt + shift;
        const reason = now - (r.createdAt + shift) > maxAgeMs ? 'expired-age' : expiresAt !== null && expiresAt <= now ? 'expired-message' : undefined;
        if (reason !== undefined) {
          this.deletes.set(r.seq, { bridge, reason });
          dropped = true;
        } else {
          const e = toEntry(r, this.backend.storeId);
          out.push(shift === 0 ? e : { ...e, createdAt: e.createdAt + shift, expiresAt: expiresAt ?? undefined });
        }
      }
      if (out.length >= limit || rows.length < want) break;
    }
    if (dropped) this.schedule(false);
    return out;
  }

  ack(bridge: string, seqs: readonly number[]): Promise<void> {
    if (this.closed) {
      this.log.warn({ bridge, count: seqs.length }, 'ack after the outbox closed ignored (those messages will be sent again)');
      return Promise.resolve(); // nothing will be committed any more: nobody should wait
    }
    let record = this.ackRecords.get(bridge);
    if (record === undefined) this.ackRecords.set(bridge, (record = { bridge, reason: undefined }));
    for (const seq of seqs) this.deletes.set(seq, record);
    if (seqs.length === 0) return Promise.resolve();
    this.ackBatch ??= new Promise<void>((resolve) => this.ackWaiters.push(resolve));
    this.schedule(false);
    return this.ackBatch;
  }

  newestSeq(bridge: string): number {
    return this.closed ? 0 : this.backend.newest(bridge);
  }

  stats(bridge: string): OutboxStats {
    const st = this.state(bridge);
    if (st.oldestAt === null && !this.closed) {
      const head = this.backend.head(bridge, 1)[0];
      st.oldestSeq = head?.seq;
      st.oldestAt = head === undefined ? undefined : head.createdAt + this.shift.rowShift(bridge, head.seq);
    }
    return { rows: st.rows, bytes: st.bytes, oldestCreatedAt: st.oldestAt ?? undefined, drops: { ...st.drops } };
  }

  watch(bridge: string, listener: () => void): () => void {
    let set = this.listeners.get(bridge);
    if (set === undefined) this.listeners.set(bridge, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  flush(): Promise<void> {
    if (this.timer === undefined && !this.hasWork()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule(true);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.cancelTimer();
    this.commit(); // the pending batch, now: close() is how a stop keeps its promises
    // Acks whose deletes failed even now are not stored (those messages will be sent again);
    // whoever waits is released all the same, since nothing more will be committed.
    const left = this.ackWaiters;
    this.ackWaiters = [];
    this.ackBatch = undefined;
    for (const resolve of left) resolve();
    this.listeners.clear();
  }

  /** Progress: appends or acks waiting and no commit attempt since (a retry after a disk error counts as one). */
  readonly progress: ProgressProbe = {
    name: 'outbox committer',
    waitingSince: () => (!this.closed && this.hasWork() ? this.lastTurnAt : undefined),
  };

  private hasWork = (): boolean =>
    this.appends.length > 0 || this.deletes.size > 0 || this.sweepDue || this.shift.pending !== 0 || this.participants.some((p) => p.hasWork());

  private state(bridge: string): BridgeState {
    if (!this.loaded) {
      this.loaded = true;
      for (const t of this.backend.totals()) {
        this.bridges.set(t.bridge, { limits: UNLIMITED, rows: t.rows, bytes: t.bytes, oldestSeq: null, oldestAt: null, drops: {} });
      }
      // The last number of a source with rows is in its newest row (see commit-tx.ts).
      for (const s of this.backend.sourceSeqsInRows()) {
        const key = sourceKey(s.bridge, s.originKind, s.originId);
        this.sourceCache.set(key, { ...s, last: Math.max(s.last, this.backend.lastSourceSeq(s.bridge, s.originKind, s.originId)) });
      }
    }
    if (!this.closed) this.shift.started(bridge, this.backend);
    let st = this.bridges.get(bridge);
    if (st === undefined) {
      st = { limits: UNLIMITED, rows: 0, bytes: 0, oldestSeq: undefined, oldestAt: undefined, drops: {} };
      this.bridges.set(bridge, st);
    }
    return st;
  }

  /**
   * At most one commit per tick and at most one per commit window: the next commit starts
   * no sooner than `commitWindowMs` after the previous one started. Work that somebody
   * waits for (`prompt`, see commit-pacer.ts) commits as soon as that allows: an append
   * into an idle outbox commits on the next tick. Other work (messages of publishers that
   * do not wait, cloud acks, sweeps) may wait up to the commit delay for more to share its
   * commit, so batches grow with the number of sources and each message costs fewer bytes
   * of WAL (flash wear) and less CPU.
   * Real timers, not the injected Clock: the window is a disk-latency budget, not
   * application time, and a fake clock in tests must not freeze commits. They stay
   * ref'd so a process with appends in flight does not exit before they commit.
   */
  private schedule(prompt: boolean): void {
    if (this.closed) return;
    const now = performance.now();
    this.batchSince ??= now;
    if (this.timer?.kind === 'retry') this.cancelTimer(); // new work does not wait for the retry delay
    const floor = this.lastCommitAt + this.opts.commitWindowMs;
    const due = prompt ? floor : Math.max(floor, this.batchSince + this.pacer.delayMs);
    if (this.timer !== undefined) {
      if (this.timer.due <= due) return;
      this.cancelTimer();
    }
    const run = () => {
      this.timer = undefined;
      this.commit();
    };
    const wait = due - now;
    this.timer =
      wait >= 1 ? { kind: 'timeout', handle: setTimeout(run, wait), due } : { kind: 'immediate', handle: setImmediate(run), due };
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    if (this.timer.kind === 'immediate') clearImmediate(this.timer.handle as NodeJS.Immediate);
    else clearTimeout(this.timer.handle as NodeJS.Timeout);
    this.timer = undefined;
  }

  private commit(): void {
    this.lastTurnAt = this.opts.clock.now();
    this.batchSince = undefined;
    try {
      this.commitBatch();
    } finally {
      this.pacer.answered(performance.now());
    }
  }

  private commitBatch(): void {
    const now = this.opts.clock.now(); // first: a clock step seen here moves pending stamps before they are taken
    const appends = this.appends;
    const deletes = this.deletes;
    const sweep = this.sweepDue && mayHoldExpired(this.bridges.values(), now);
    const waiters = this.waiters;
    let acked = this.ackWaiters;
    this.ackWaiters = [];
    this.ackBatch = undefined;
    this.appends = [];
    this.deletes = new Map();
    this.sweepDue = false;
    this.waiters = [];
    let batches: CommitBatch[] | undefined;
    for (const p of this.participants) {
      const b = p.take();
      if (b !== undefined) (batches ??= []).push(b);
    }
    if (appends.length === 0 && deletes.size === 0 && !sweep && batches === undefined && this.shift.pending === 0) {
      for (const w of waiters) w.resolve();
      for (const resolve of acked) resolve();
      return;
    }
    const started = (this.lastCommitAt = performance.now());
    const stateOf = (b: string) => this.state(b);
    let sweepNow = sweep;
    if (this.diskWasFull && (deletes.size > 0 || sweep)) {
      // After a disk-full failure the deletes go first, alone: they free the space the
      // appends need, and must not fail with them while the disk is still full.
      const err = this.commitDeletes(deletes, sweep);
      if (err !== undefined) {
        this.failed(err, appends, deletes, sweep, waiters, batches, acked);
        return;
      }
      for (const resolve of acked) resolve();
      acked = [];
      deletes.clear();
      sweepNow = false;
      if (appends.length === 0 && batches === undefined) {
        for (const w of waiters) w.resolve();
        return;
      }
    }
    const tx = new CommitTx(this.backend, stateOf, this.sourceCache, now, this.committedRow);
    let outcomes: Outcome[] = [];
    let shifted = 0;
    try {
      this.backend.transaction(() => {
        shifted = this.shift.store(this.backend); // first: the rows below are stamped after the step
        for (const [seq, d] of deletes) tx.remove(d.bridge, seq, d.reason);
        if (sweepNow) for (const bridge of this.bridges.keys()) tx.sweepAge(bridge);
        outcomes = appendAll(tx, appends);
        tx.finish();
        if (batches !== undefined) for (const b of batches) b.write();
      });
    } catch (err) {
      this.failed(err, appends, deletes, sweep, waiters, batches, acked);
      return;
    }
    this.commitCount++;
    this.shift.stored(shifted);
    tx.apply();
    this.tails.committed(tx.inserted, tx.deleted);
    for (const resolve of acked) resolve();
    if (appends.length > 0 || batches !== undefined) this.diskWasFull = false;
    this.backend.afterCommit?.(queuedTotals(this.bridges.values()));
    this.opts.onCommit?.({ appends: appends.length, deletes: deletes.size, ms: performance.now() - started });
    appends.forEach((a, i) => settle(a, outcomes[i]));
    for (const w of waiters) w.resolve();
    if (batches !== undefined) for (const b of batches) b.committed();
    for (const bridge of tx.added) {
      for (const fn of this.listeners.get(bridge) ?? []) {
        try {
          fn();
        } catch (err) {
          this.log.error({ bridge, err }, 'outbox watcher threw');
        }
      }
    }
  }

  /**
   * Deletes (and the age sweep) in a transaction of their own; the error when it failed.
   * When even they do not fit, the backend gives space back (its reserve) and they are
   * tried once more: a draining bridge is what makes a full disk empty again. Space freed
   * by deletes is handed back to the disk (the WAL truncated) before appends use it.
   */
  private commitDeletes(deletes: GroupCommitOutbox['deletes'], sweep: boolean): unknown {
    let error: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      const tx = new CommitTx(this.backend, (b) => this.state(b), this.sourceCache, this.opts.clock.now(), this.committedRow);
      let shifted = 0;
      try {
        this.backend.transaction(() => {
          shifted = this.shift.store(this.backend);
          for (const [seq, d] of deletes) tx.remove(d.bridge, seq, d.reason);
          if (sweep) for (const bridge of this.bridges.keys()) tx.sweepAge(bridge);
          tx.finish();
        });
      } catch (err) {
        error = err;
        if (attempt === 0 && this.backend.storeError(err, 0).code === 'STORE_FULL' && this.backend.relieve?.()) continue;
        return err;
      }
      this.commitCount++;
      this.shift.stored(shifted);
      tx.apply();
      this.tails.committed(tx.inserted, tx.deleted);
      this.backend.checkpoint?.();
      return undefined;
    }
    return error;
  }

  private failed(
    err: unknown,
    appends: PendingAppend[],
    deletes: GroupCommitOutbox['deletes'],
    sweep: boolean,
    waiters: Waiter[],
    batches: CommitBatch[] | undefined,
    acked: Array<() => void>,
  ): void {
    const error = this.backend.storeError(err, appends.length);
    if (error.code === 'STORE_FULL') this.diskWasFull = true;
    CommitTx.countFailed((b) => this.state(b), appends);
    for (const a of appends) a.reject(error);
    for (const w of waiters) w.reject(error);
    if (batches !== undefined) for (const b of batches) b.failed(error);
    // Acks and drops were not applied: keep them for the next batch (an ack lost here
    // would only mean a duplicate, but there is no reason to lose it).
    for (const [seq, d] of deletes) if (!this.deletes.has(seq)) this.deletes.set(seq, d);
    this.ackWaiters = acked.concat(this.ackWaiters); // their deletes are tried again
    this.sweepDue ||= sweep;
    this.opts.onCommitFailed?.(error);
    const suppressed = this.errorLog.take(error.code);
    if (suppressed >= 0) this.log.error({ err, code: error.code, messages: appends.length, suppressed }, error.message);
    if (!this.closed && this.timer === undefined && this.hasWork()) {
      const handle = setTimeout(() => {
        this.timer = undefined;
        this.commit();
      }, this.opts.retryMs ?? 1000);
      handle.unref(); // leftover deletes alone must not keep the process alive
      this.timer = { kind: 'retry', handle, due: Infinity };
    }
  }
}
