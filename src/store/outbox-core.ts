/**
 * The Outbox on top of any OutboxBackend: group commit, caps and drop policies,
 * in-memory counters, watchers. SqliteOutbox and MemoryOutbox are this class with a
 * different backend.
 *
 *   append ─┐                      ┌─ one transaction: deletes → age sweep → appends (caps)
 *   ack ────┼→ pending (in memory) ┤  next tick, or commit_window ms after the first one
 *   read ───┘  (expired rows)      └─ commit ok → resolve appends, run watchers
 *                                     commit failed → reject appends (STORE_FULL…), keep deletes
 *
 * Nothing is resolved before its transaction committed: the publisher's PUBACK waits
 * for this promise (DESIGN §4, persist before you acknowledge).
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import type { Message } from '../core/message.js';
import type { OutboxBackend } from './backend.js';
import { CommitTx, type BridgeState, type Outcome, type PendingAppend } from './commit-tx.js';
import type { Outbox, OutboxDropReason, OutboxEntry, OutboxLimits, OutboxStats } from './outbox.js';
import { encodeProperties, recordBytes, toEntry } from './record.js';

export interface OutboxOptions {
  clock: Clock;
  log: Logger;
  /** Group-commit window (store.commit_window): 0 = commit on the next tick. */
  commitWindowMs: number;
  /** How often rows past max_age are swept when nobody reads them (default 60 s). */
  sweepIntervalMs?: number;
  /** Delay before a failed commit's deletes are tried again when no append comes (default 1 s). */
  retryMs?: number;
}

/** A bridge that was never configured keeps everything. */
const UNLIMITED: OutboxLimits = { maxBytes: Infinity, maxRows: Infinity, maxAgeMs: Infinity, whenFull: 'drop-oldest' };
/** At most one "disk full" error line per this many ms; the rest are counted in it. */
const ERROR_LOG_INTERVAL_MS = 10_000;

type Waiter = { resolve: () => void; reject: (err: unknown) => void };

export class GroupCommitOutbox implements Outbox {
  private readonly bridges = new Map<string, BridgeState>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly sourceCache = new Map<string, number>();
  private appends: PendingAppend[] = [];
  /** Rows to delete in the next commit: seq → bridge and why (undefined = acked). */
  private deletes = new Map<number, { bridge: string; reason: OutboxDropReason | undefined }>();
  private sweepDue = false;
  private waiters: Waiter[] = [];
  private timer: { kind: 'immediate' | 'timeout' | 'retry'; handle: NodeJS.Immediate | NodeJS.Timeout } | undefined;
  private sweepTimer: { cancel(): void } | undefined;
  private loaded = false;
  private closed = false;
  private lastErrorLogAt = -Infinity;
  private suppressedErrors = 0;
  private commitCount = 0;
  protected readonly log: Logger;

  constructor(
    private readonly backend: OutboxBackend,
    private readonly opts: OutboxOptions,
  ) {
    this.log = opts.log;
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
        this.schedule();
      }, this.opts.sweepIntervalMs ?? 60_000);
    }
  }

  append(bridge: string, msg: Message): Promise<void> {
    if (this.closed) return Promise.reject(new OutpostError('STORE_UNAVAILABLE', 'the outbox is closed; the message was not stored'));
    this.state(bridge);
    const props = encodeProperties(msg.properties);
    return new Promise<void>((resolve, reject) => {
      this.appends.push({
        bridge,
        resolve,
        reject,
        row: {
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
          bytes: recordBytes(msg.topic, msg.payload, props),
        },
      });
      this.schedule();
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
      const rows = this.backend.read(bridge, cursor, want);
      for (const r of rows) {
        cursor = r.seq;
        if (this.deletes.has(r.seq)) continue; // acked or dropped, deleted at the next commit
        const reason = now - r.createdAt > maxAgeMs ? 'expired-age' : r.expiresAt !== null && r.expiresAt <= now ? 'expired-message' : undefined;
        if (reason !== undefined) {
          this.deletes.set(r.seq, { bridge, reason });
          dropped = true;
        } else {
          out.push(toEntry(r, this.backend.storeId));
        }
      }
      if (out.length >= limit || rows.length < want) break;
    }
    if (dropped) this.schedule();
    return out;
  }

  ack(bridge: string, seqs: readonly number[]): void {
    if (this.closed) {
      this.log.warn({ bridge, count: seqs.length }, 'ack after the outbox closed ignored (those messages will be sent again)');
      return;
    }
    for (const seq of seqs) this.deletes.set(seq, { bridge, reason: undefined });
    if (seqs.length > 0) this.schedule();
  }

  stats(bridge: string): OutboxStats {
    const st = this.state(bridge);
    if (st.oldestAt === null) {
      const head = this.backend.head(bridge, 1)[0];
      st.oldestSeq = head?.seq;
      st.oldestAt = head?.createdAt;
    }
    return { rows: st.rows, bytes: st.bytes, oldestCreatedAt: st.oldestAt, drops: { ...st.drops } };
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
      this.schedule();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.cancelTimer();
    this.commit(); // the pending batch, now: close() is how a stop keeps its promises
    this.listeners.clear();
  }

  private hasWork(): boolean {
    return this.appends.length > 0 || this.deletes.size > 0 || this.sweepDue;
  }

  /** Whether some bridge may hold rows past its max age (saves empty sweep transactions). */
  private needsSweep(): boolean {
    const now = this.opts.clock.now();
    for (const st of this.bridges.values()) {
      if (st.rows > 0 && Number.isFinite(st.limits.maxAgeMs) && (st.oldestAt === null || (st.oldestAt ?? now) < now - st.limits.maxAgeMs)) return true;
    }
    return false;
  }

  private state(bridge: string): BridgeState {
    if (!this.loaded) {
      this.loaded = true;
      for (const t of this.backend.totals()) {
        this.bridges.set(t.bridge, { limits: UNLIMITED, rows: t.rows, bytes: t.bytes, oldestSeq: null, oldestAt: null, drops: {} });
      }
    }
    let st = this.bridges.get(bridge);
    if (st === undefined) {
      st = { limits: UNLIMITED, rows: 0, bytes: 0, oldestSeq: undefined, oldestAt: undefined, drops: {} };
      this.bridges.set(bridge, st);
    }
    return st;
  }

  /**
   * One commit per tick, or per window after the first pending item, whichever is later.
   * Real timers, not the injected Clock: the window is a disk-latency budget, not
   * application time, and a fake clock in tests must not freeze commits. They stay
   * ref'd so a process with appends in flight does not exit before they commit.
   */
  private schedule(): void {
    if (this.closed) return;
    if (this.timer?.kind === 'retry') this.cancelTimer(); // new work does not wait for the retry delay
    if (this.timer !== undefined) return;
    const run = () => {
      this.timer = undefined;
      this.commit();
    };
    this.timer =
      this.opts.commitWindowMs > 0
        ? { kind: 'timeout', handle: setTimeout(run, this.opts.commitWindowMs) }
        : { kind: 'immediate', handle: setImmediate(run) };
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    if (this.timer.kind === 'immediate') clearImmediate(this.timer.handle as NodeJS.Immediate);
    else clearTimeout(this.timer.handle as NodeJS.Timeout);
    this.timer = undefined;
  }

  private commit(): void {
    const appends = this.appends;
    const deletes = this.deletes;
    const sweep = this.sweepDue && this.needsSweep();
    const waiters = this.waiters;
    this.appends = [];
    this.deletes = new Map();
    this.sweepDue = false;
    this.waiters = [];
    if (appends.length === 0 && deletes.size === 0 && !sweep) {
      for (const w of waiters) w.resolve();
      return;
    }
    const stateOf = (b: string) => this.state(b);
    const tx = new CommitTx(this.backend, stateOf, this.sourceCache, this.opts.clock.now());
    const outcomes: Outcome[] = [];
    try {
      this.backend.transaction(() => {
        for (const [seq, d] of deletes) tx.remove(d.bridge, seq, d.reason);
        if (sweep) for (const bridge of this.bridges.keys()) tx.sweepAge(bridge);
        for (const a of appends) outcomes.push(tx.append(a));
        tx.finish();
      });
    } catch (err) {
      this.failed(err, appends, deletes, sweep, waiters);
      return;
    }
    this.commitCount++;
    tx.apply();
    appends.forEach((a, i) => {
      if (outcomes[i] !== 'full-rejected') a.resolve();
      else {
        a.reject(new OutpostError('STORE_FULL', `the outbox of bridge ${a.bridge} is full (when_full: reject); the message was refused`));
      }
    });
    for (const w of waiters) w.resolve();
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

  private failed(err: unknown, appends: PendingAppend[], deletes: GroupCommitOutbox['deletes'], sweep: boolean, waiters: Waiter[]): void {
    const error = this.backend.storeError(err, appends.length);
    CommitTx.countFailed((b) => this.state(b), appends);
    for (const a of appends) a.reject(error);
    for (const w of waiters) w.reject(error);
    // Acks and drops were not applied: keep them for the next batch (an ack lost here
    // would only mean a duplicate, but there is no reason to lose it).
    for (const [seq, d] of deletes) if (!this.deletes.has(seq)) this.deletes.set(seq, d);
    this.sweepDue ||= sweep;
    const now = this.opts.clock.now();
    if (now - this.lastErrorLogAt >= ERROR_LOG_INTERVAL_MS) {
      this.log.error({ err, code: error.code, messages: appends.length, suppressed: this.suppressedErrors }, error.message);
      this.lastErrorLogAt = now;
      this.suppressedErrors = 0;
    } else {
      this.suppressedErrors++;
    }
    if (!this.closed && this.timer === undefined && this.hasWork()) {
      const handle = setTimeout(() => {
        this.timer = undefined;
        this.commit();
      }, this.opts.retryMs ?? 1000);
      handle.unref(); // leftover deletes alone must not keep the process alive
      this.timer = { kind: 'retry', handle };
    }
  }
}
