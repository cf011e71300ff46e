/**
 * Write-through persistence of sessions and retained messages (issue 5): the broker
 * records each change here as it happens, and the changes ride in the next group commit
 * of the outbox (GroupCommitOutbox.join), never one fsync per message and never a
 * snapshot.
 *
 *   broker ── saveSession / addDelivery / retain … ─▶ pending ops (in memory, in order)
 *                                                        │ next commit of the outbox
 *   PUBACK / PUBREC / SUBACK ◀── committed() resolves ◀──┘ one transaction with its appends
 *
 * It shares the outbox's database file on purpose: a QoS 1 publish that a bridge selects
 * and a persistent session queues is committed by one transaction (one WAL append, one
 * fsync), where two files would need two fsyncs per batch and could disagree after a crash.
 *
 * Cheap cases: a delivery added and removed within one batch (an online subscriber that
 * acknowledged before the commit) writes nothing; an update of a delivery still pending
 * changes the pending insert; retained updates of one topic within a batch write once.
 */
import type { StampMover } from '../core/clock-steps.js';
import { deferred, type Deferred } from '../core/deferred.js';
import { OutpostError } from '../core/errors.js';
import { originKey, type Message, type Origin } from '../core/message.js';
import type {
  DeliveryState,
  RestoreLimits,
  RestoredState,
  StateJournal,
  StoredDelivery,
  StoredSessionRecord,
  StoredSubscription,
} from '../core/persistence.js';
import type { StoreDatabase } from './database.js';
import type { CommitBatch, CommitJoin, CommitParticipant } from './outbox-core.js';
import { StateSql } from './state-sql.js';

type Op =
  | { k: 'session'; rec: StoredSessionRecord }
  | { k: 'del-session'; clientId: string }
  | { k: 'sub'; clientId: string; sub: StoredSubscription }
  | { k: 'del-sub'; clientId: string; filter: string }
  | { k: 'add'; clientId: string; d: StoredDelivery; cancelled: boolean }
  | { k: 'upd'; id: number; packetId: number; state: DeliveryState }
  | { k: 'rm'; id: number }
  | { k: 'q2'; clientId: string; packetId: number }
  | { k: 'del-q2'; clientId: string; packetId: number };

export interface JournalOptions {
  db: StoreDatabase;
  persistSessions: boolean;
  persistRetained: boolean;
}

export class SqliteStateJournal implements StateJournal, CommitParticipant {
  readonly persistSessions: boolean;
  readonly persistRetained: boolean;
  private readonly sql: StateSql;
  private ops: Op[] = [];
  /** Inserts of the pending batch by delivery id (to cancel or amend them). */
  private adds = new Map<number, Extract<Op, { k: 'add' }>>();
  private retained = new Map<string, Message>();
  private deferred: Deferred | undefined;
  private join: CommitJoin | undefined;
  private scheduled = false;
  private lastId: number | undefined;
  private closed = false;
  private count = 0;
  /** A step of the wall clock not yet applied to the stored stamps (clockStepped). */
  private stampShift = 0;

  constructor(opts: JournalOptions) {
    this.sql = new StateSql(opts.db);
    this.persistSessions = opts.persistSessions;
    this.persistRetained = opts.persistRetained;
  }

  /** Connects the journal to the commits it rides in. */
  attach(join: CommitJoin): void {
    this.join = join;
  }

  /** No more writes: what is pending was committed by the outbox's close (or is dropped). */
  close(): void {
    this.closed = true;
    this.join?.leave();
    this.join = undefined;
    this.fail(new OutpostError('STORE_UNAVAILABLE', 'the store is closed; the change was not stored'));
  }

  get writes(): number {
    return this.count;
  }

  committed(origin?: Origin): Promise<void> {
    if (this.deferred === undefined) {
      this.deferred = deferred();
      // Whoever waits sees a failure; one that nobody is left to see is not an unhandled rejection.
      this.deferred.promise.catch(() => undefined);
    }
    const { promise } = this.deferred;
    // Somebody waits for this commit, so the outbox may bring it forward (commit-pacer.ts);
    // with nothing pending the next commit settles it (or it is rejected when closed).
    this.schedule({ origin: origin === undefined ? undefined : originKey(origin) });
    return promise;
  }

  nextDeliveryId(): number {
    this.lastId ??= this.sql.maxDeliveryId();
    return ++this.lastId;
  }

  retain(msg: Message): void {
    // $SYS topics describe this run of the gateway (link states, stats): not carried over.
    if (!this.persistRetained || msg.topic.startsWith('$SYS/')) return;
    this.retained.set(msg.topic, msg);
    this.touch();
  }

  saveSession(rec: StoredSessionRecord): void {
    // Refused here, where the caller hears of it, rather than failing every later commit: a
    // batch that cannot be written is kept for the next one (take().failed), so one record
    // the table cannot hold would stop all persistence until a restart.
    const { expiryInterval: e, offlineAt } = rec;
    if (!Number.isInteger(e) || e < 0 || e > 0xffffffff || (offlineAt !== undefined && !Number.isFinite(offlineAt))) {
      throw new OutpostError('STORE_UNAVAILABLE', `session of ${rec.clientId} not stored: expiry ${String(e)}, offline since ${String(offlineAt)}`);
    }
    this.push({ k: 'session', rec: { ...rec } });
  }

  deleteSession(clientId: string): void {
    this.push({ k: 'del-session', clientId });
  }

  saveSubscription(clientId: string, sub: StoredSubscription): void {
    this.push({ k: 'sub', clientId, sub: { ...sub } });
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.push({ k: 'del-sub', clientId, filter });
  }

  /** Takes `d` as it is (every caller builds it for this call): updateDelivery amends it until the commit. */
  addDelivery(clientId: string, d: StoredDelivery): void {
    const op = { k: 'add' as const, clientId, d, cancelled: false };
    this.adds.set(d.id, op);
    this.push(op);
  }

  updateDelivery(id: number, packetId: number, state: DeliveryState): void {
    const add = this.adds.get(id);
    if (add !== undefined) {
      add.d.packetId = packetId;
      add.d.state = state;
      return this.touch();
    }
    this.push({ k: 'upd', id, packetId, state });
  }

  removeDelivery(id: number): void {
    const add = this.adds.get(id);
    if (add !== undefined) {
      add.cancelled = true;
      this.adds.delete(id);
      return this.touch();
    }
    this.push({ k: 'rm', id });
  }

  addQos2(clientId: string, packetId: number): void {
    this.push({ k: 'q2', clientId, packetId });
  }

  removeQos2(clientId: string, packetId: number): void {
    this.push({ k: 'del-q2', clientId, packetId });
  }

  restore(now: number, limits: RestoreLimits): RestoredState {
    return this.sql.restore(now, limits, this.persistSessions, this.persistRetained);
  }

  /** What is stored under an in-process consumer's key (CONSUMER_KEY_PREFIX), read back at its start. */
  restoreConsumer(key: string, now: number, limits: RestoreLimits): ReturnType<StateSql['restoreConsumer']> {
    return this.sql.restoreConsumer(key, now, limits);
  }

  /** In-process consumer keys from `prefix` on that have deliveries stored. */
  consumerKeys(prefix: string): string[] {
    return this.sql.consumerKeys(prefix);
  }

  /**
   * The wall clock stepped: the pending writes' stamps move at once (records are copies; their
   * messages and Wills are shared with the broker, moved once by `mover`), the stored ones by
   * one UPDATE per table first in the next commit, before any write stamped after the step.
   */
  clockStepped(mover: StampMover): void {
    if (this.closed) return;
    for (const op of this.ops) {
      if (op.k === 'session') {
        op.rec.offlineAt = mover.at(op.rec.offlineAt);
        mover.will(op.rec.will);
      } else if (op.k === 'add') mover.message(op.d.msg);
    }
    for (const m of this.retained.values()) mover.message(m);
    this.stampShift += mover.deltaMs;
    this.touch();
  }

  // ---- CommitParticipant ---------------------------------------------------------

  hasWork(): boolean {
    return this.ops.length > 0 || this.retained.size > 0 || this.deferred !== undefined || this.stampShift !== 0;
  }

  take(): CommitBatch | undefined {
    this.scheduled = false;
    if (!this.hasWork()) return undefined;
    const ops = this.ops;
    const retained = this.retained;
    const deferred = this.deferred;
    const shift = this.stampShift;
    this.stampShift = 0;
    this.ops = [];
    this.adds = new Map();
    this.retained = new Map();
    this.deferred = undefined;
    const sql = this.sql;
    return {
      write: () => {
        if (shift !== 0) sql.shiftStamps(shift);
        for (const m of retained.values()) sql.retain(m);
        for (const op of ops) apply(sql, op);
      },
      committed: () => deferred?.resolve(),
      failed: (err) => {
        // Kept for the next commit, before anything newer: memory and file must not drift
        // apart; whoever waited is told (a publisher is not acknowledged and resends).
        this.ops = ops.concat(this.ops);
        this.stampShift += shift;
        for (const [topic, m] of retained) if (!this.retained.has(topic)) this.retained.set(topic, m);
        deferred?.reject(err);
      },
    };
  }

  private push(op: Op): void {
    this.ops.push(op);
    this.touch();
  }

  private touch(): void {
    this.count++;
    this.schedule();
  }

  /** Asks for a commit: once per batch for the work itself, and again for every wait on it. */
  private schedule(wait?: { origin?: string }): void {
    if (this.scheduled && wait === undefined) return;
    if (this.closed || this.join === undefined || !this.join.schedule(wait)) {
      this.fail(new OutpostError('STORE_UNAVAILABLE', 'the store is not open; the change was not stored'));
      return;
    }
    this.scheduled = true;
  }

  private fail(err: OutpostError): void {
    this.ops = [];
    this.adds = new Map();
    this.retained = new Map();
    const d = this.deferred;
    this.deferred = undefined;
    d?.reject(err);
  }
}

function apply(sql: StateSql, op: Op): void {
  switch (op.k) {
    case 'session':
      return sql.saveSession(op.rec);
    case 'del-session':
      return sql.deleteSession(op.clientId);
    case 'sub':
      return sql.saveSubscription(op.clientId, op.sub);
    case 'del-sub':
      return sql.deleteSubscription(op.clientId, op.filter);
    case 'add':
      if (!op.cancelled) sql.addDelivery(op.clientId, op.d);
      return;
    case 'upd':
      return sql.updateDelivery(op.id, op.packetId, op.state);
    case 'rm':
      return sql.removeDelivery(op.id);
    case 'q2':
      return sql.addQos2(op.clientId, op.packetId);
    case 'del-q2':
      return sql.removeQos2(op.clientId, op.packetId);
  }
}
