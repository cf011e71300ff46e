/**
 * The local MQTT broker, which is also the gateway's in-process bus.
 *
 *   transport (TCP, TLS, WS, in-memory duplex) ─ handle(stream) ─▶ Connection ─▶ handlers
 *                                                                       │
 *   serial / MQTT-SN / bridge ── Bus.publish ──┐                        ▼
 *                                              ├─▶ route ─▶ SubscriptionTree ─▶ Session / BusSubscriber
 *   retained store ◀── retain flag ────────────┤
 *   durable sinks (bridge outbox) ◀── commit ──┤  (acks wait for this)
 *   state journal (persistent sessions, ◀──────┘  (and for this, when a persistent
 *     retained messages; same commits)             session or the retained store changed)
 *
 * The broker never opens a socket: listeners hand it streams.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Service } from '../core/lifecycle.js';
import type { ProgressProbe } from '../core/progress.js';
import type { Bus, BusHandler, BusSubscribeOptions, BusSubscription, DurableSink } from '../core/bus.js';
import { originKey, type Message, type Origin, type QoS } from '../core/message.js';
import type { StateJournal } from '../core/persistence.js';
import { parseSharedFilter, validateTopicFilter } from '../core/topic.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
import { Connection, connectedClients, type ConnectedClient, type PeerInfo } from './connection.js';
import type { BrokerContext, OpenedSession } from './context.js';
import { SessionLifecycle } from './session-lifecycle.js';
import { BrokerMetrics, type DropReason } from './metrics.js';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';
import { MemoryRetainedStore, type RetainedStore } from './retained.js';
import { Session } from './session.js';
import { SubscriptionTree, type Subscriber, type SubscriptionEntry } from './subscription-tree.js';
import { BusSubscribers } from './bus-subscriber.js';
import type { AccessControl } from '../auth/access-control.js';
import type { Grants } from '../auth/acl.js';
import type { Authorizer } from '../core/authorizer.js';
import { AccessState } from './access-state.js';
import { applyReadGrants } from './read-guard.js';
import { ConnectLimits } from './connect-limits.js';
import { earlierStamps, moveStamps, restoreState, writeThrough } from './persistence.js';
import type { StampMover } from '../core/clock-steps.js';

export interface BrokerDeps {
  log: Logger;
  clock?: Clock;
  retained?: RetainedStore;
  /** Password file and ACL; default: none (everyone is anonymous and may do anything). */
  access?: AccessControl;
}

export class Broker implements Bus, BrokerContext, Service, Authorizer {
  readonly name = 'broker';
  readonly options: BrokerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics = new BrokerMetrics();
  private readonly retained: RetainedStore;
  private readonly tree = new SubscriptionTree();
  private readonly sessions = new Map<string, Session>();
  private readonly connections = new Set<Connection>();
  private readonly sinks: DurableSink[] = [];
  private readonly limiter: LogRateLimiter;
  private flushList: Connection[] = [];
  private flushScheduled = false;
  private routeEpoch = 0;
  routeFanout = 0;
  private readonly busSubs = new BusSubscribers();
  private closing = false;
  private sweepTimer: TimerHandle | undefined;
  private readonly accessState: AccessState;
  private readonly limits: ConnectLimits;
  private readonly lifecycle: SessionLifecycle;
  private journal: StateJournal | undefined;
  private restored = false;
  private sweepMs = 0;
  private lastSweepAt = 0;
  private readonly earlier = earlierStamps(); // what restoreState put back with an earlier run's stamps

  constructor(options: Partial<BrokerOptions>, deps: BrokerDeps) {
    this.options = { ...defaultBrokerOptions, ...options };
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.retained = deps.retained ?? new MemoryRetainedStore();
    this.limiter = new LogRateLimiter(this.clock);
    this.accessState = new AccessState(deps.access);
    this.limits = new ConnectLimits(this.options, { clock: this.clock, log: this.log, metrics: this.metrics, limiter: this.limiter });
    this.lifecycle = new SessionLifecycle({
      sessions: this.sessions,
      clock: this.clock,
      log: this.log,
      closing: () => this.closing,
      newSession: (clientId) => this.newSession(clientId),
      persist: (session) => this.persistence(session),
      removeSubscription: (session, filter) => this.removeSubscription(session, filter),
      deliverShared: (filter, msg) => this.deliverShared(filter, msg),
      publish: (msg) => this.publish(msg),
      mayPublishWill: (w) => {
        if (this.access.grantsFor({ kind: 'mqtt', id: w.msg.origin.id, user: w.user }).canWrite(w.msg.topic)) return true;
        this.metrics.denial('will');
        this.log.warn({ clientId: w.msg.origin.id, topic: w.msg.topic }, 'will not published: the ACL no longer lets its client write the topic');
        return false;
      },
    });
  }

  /**
   * Applies a new password file and ACL: to CONNECTs from now on, and to every later
   * PUBLISH and SUBSCRIBE check and delivery of the clients already connected (their
   * subscriptions are kept and read with the new rights). Only the clients of a user
   * deleted from the password file or given a new password are disconnected.
   */
  setAccessControl(ac: AccessControl): void {
    this.accessState.replace(ac, this.sessions.values());
  }

  /** Connection limits, counted before a TLS or WebSocket handshake (see listen.ts gateHandshakes). */
  admitHandshake(peer: Pick<PeerInfo, 'transport' | 'remoteAddress' | 'remotePort'>): boolean {
    return !this.closing && this.limits.admitHandshake(peer);
  }

  /** The TCP socket of a connection admitted by admitHandshake closed. */
  handshakeClosed(peer: Pick<PeerInfo, 'transport' | 'remoteAddress' | 'remotePort'>): void {
    this.limits.release(peer.remoteAddress);
  }

  get access(): AccessControl {
    return this.accessState.current;
  }

  get verifyQueue(): AccessState['verifyQueue'] {
    return this.accessState.verifyQueue;
  }

  /** What a non-MQTT source (MQTT-SN client, serial device, bridge) may read and write. */
  grantsFor(origin: Origin): Grants {
    return this.accessState.grantsFor(origin, originKey(origin));
  }

  /**
   * Writes persistent sessions and retained messages through `journal` from now on; the
   * state it holds is restored by start(). Called by the composition root once the
   * store is open, before the broker starts.
   */
  attachJournal(journal: StateJournal | undefined): void {
    this.journal = journal;
    this.restored = false;
  }

  /** The wall clock stepped (core/clock-steps.ts): every stamp the broker holds moves with it. */
  clockStepped(mover: StampMover): void {
    const { retained, connections, journal, earlier } = this;
    this.lastSweepAt += mover.deltaMs;
    moveStamps(mover, { retained, sessions: this.sessions.values(), connections, journal, earlier }, this.clock.now(), { armExpiry: (s, ms) => this.armExpiry(s, ms), armWill: (s, w) => this.lifecycle.armWill(s, w) });
  }

  /** Progress: the keepalive sweep was due and has not run. */
  readonly progress: ProgressProbe = {
    name: 'broker keepalive sweep',
    waitingSince: (now) => {
      if (this.sweepTimer === undefined) return undefined;
      const due = this.lastSweepAt + this.sweepMs;
      return due <= now ? due : undefined;
    },
  };

  /** Up to `limit` connected clients (status page and `outpost status`). */
  clients = (limit: number): ConnectedClient[] => connectedClients(this.connections, limit);

  get sessionCount(): number {
    return this.sessions.size;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Serves MQTT on any duplex stream: a TCP or TLS socket, a WebSocket stream, an in-memory pair. */
  handle(stream: Duplex, peer: PeerInfo = { transport: 'stream', remoteAddress: 'local', remotePort: 0 }): void {
    // Limits are checked before anything is read: a refused connection costs one close.
    if (this.closing || !this.limits.admit(peer)) {
      if (this.closing) this.metrics.connectionsRefused++;
      stream.destroy();
      return;
    }
    const conn = new Connection(this, stream, peer);
    this.connections.add(conn);
    if (this.sweepTimer === undefined) {
      this.sweepMs = Math.max(50, Math.min(500, this.options.connectTimeoutMs / 2));
      this.lastSweepAt = this.clock.now();
      this.sweepTimer = this.clock.setInterval(this.sweep, this.sweepMs);
    }
    this.metrics.opened(peer.listener, this.connections.size);
    conn.open();
  }

  // ---- Bus ---------------------------------------------------------------------

  publish(msg: Message): Promise<void> | undefined {
    this.metrics.messagesIn++;
    const journal = this.journal;
    const writes = journal === undefined ? 0 : journal.writes;
    this.metrics.messagesBySource[msg.origin.kind]++;
    if (msg.retain && this.options.retainAvailable) {
      // Stored with its flag; an empty payload removes the retained message [MQTT-3.3.1-10/-11].
      this.retained.set(msg);
      journal?.retain(msg);
    }
    let waits: Promise<void>[] | undefined;
    for (const sink of this.sinks) {
      if (sink.selects(msg)) (waits ??= []).push(sink.accept(msg));
    }
    this.route(msg);
    // Persist before you acknowledge: a QoS 1/2 publish that changed the retained store or
    // reached a persistent session is acknowledged after the commit holding those rows.
    const stored = journal !== undefined && msg.qos > 0 && journal.writes !== writes ? journal.committed(msg.origin) : undefined;
    if (waits === undefined) return stored;
    if (waits.length === 1) {
      // The usual pair, the outbox row and the session journal, settle in one commit: the
      // journal's promise chained behind the row's costs a third of Promise.all's objects.
      // (If the row fails first, the journal's failure is not left unhandled: StateJournal.committed.)
      return stored === undefined ? waits[0] : waits[0]!.then(() => stored);
    }
    if (stored !== undefined) waits.push(stored);
    // Nobody reads the value, so Promise.all's array of undefineds stands in for void (one promise less per message).
    return Promise.all(waits) as Promise<unknown> as Promise<void>;
  }

  subscribe(filter: string, origin: Origin, opts: BusSubscribeOptions, handler: BusHandler): BusSubscription {
    const shared = parseSharedFilter(filter);
    if (typeof shared === 'string') throw new Error(`invalid filter "${filter}": ${shared}`);
    if (shared === null) {
      const check = validateTopicFilter(filter);
      if (!check.ok) throw new Error(`invalid filter "${filter}": ${check.reason}`);
    }
    const sub = this.busSubs.for(origin, handler, opts.member, this.log);
    const entry: SubscriptionEntry = {
      subscriber: sub,
      filter,
      qos: opts.qos,
      noLocal: opts.noLocal ?? false,
      retainAsPublished: opts.retainAsPublished ?? false,
      retainHandling: 0,
      subscriptionId: undefined,
      group: shared === null ? undefined : shared.group,
    };
    this.tree.add(shared === null ? filter : shared.filter, entry);
    if (opts.sendRetained && shared === null) {
      for (const m of this.retainedFor(filter)) sub.deliver(m, Math.min(m.qos, opts.qos) as QoS, true, undefined);
    }
    return {
      unsubscribe: () => {
        this.tree.remove(shared === null ? filter : shared.filter, sub.key, entry.group);
      },
    };
  }

  addDurableSink(sink: DurableSink): () => void {
    this.sinks.push(sink);
    return () => {
      const i = this.sinks.indexOf(sink);
      if (i >= 0) this.sinks.splice(i, 1);
    };
  }

  /**
   * Delivers to every matching subscriber once, at the highest QoS of its matching
   * subscriptions, carrying all their Subscription Identifiers [MQTT-3.3.4-3..5].
   */
  private route(msg: Message): void {
    if (msg.expiresAt !== undefined && msg.expiresAt <= this.clock.now()) return;
    const hits = this.tree.match(msg.topic, []);
    const n = hits.length;
    if (n === 0) return;
    const epoch = ++this.routeEpoch;
    let overlap = false;
    for (let i = 0; i < n; i++) {
      const s = hits[i]!.subscriber;
      if (s.routeMark === epoch) {
        overlap = true;
        break;
      }
      s.routeMark = epoch;
    }
    const prevFanout = this.routeFanout;
    this.routeFanout = n;
    if (!overlap) {
      for (let i = 0; i < n; i++) this.deliverOne(msg, hits[i]!);
      this.routeFanout = prevFanout;
      return;
    }
    const merged = new Map<Subscriber, { qos: QoS; rap: boolean; ids: number[] | undefined }>();
    for (const e of hits) {
      if (e.noLocal && e.subscriber.originId === originKey(msg.origin)) continue;
      if (e.readGuard !== undefined && !e.readGuard.canRead(msg.topic)) {
        this.metrics.denial('delivery');
        continue;
      }
      const qos = Math.min(msg.qos, e.qos) as QoS;
      const m = merged.get(e.subscriber);
      if (m === undefined) {
        merged.set(e.subscriber, { qos, rap: e.retainAsPublished, ids: e.subscriptionId !== undefined ? [e.subscriptionId] : undefined });
      } else {
        if (qos > m.qos) m.qos = qos;
        m.rap ||= e.retainAsPublished;
        if (e.subscriptionId !== undefined) (m.ids ??= []).push(e.subscriptionId);
      }
    }
    for (const [s, m] of merged) s.deliver(msg, m.qos, msg.retain && m.rap, m.ids);
    this.routeFanout = prevFanout;
  }

  private deliverOne(msg: Message, e: SubscriptionEntry): void {
    // No Local: not back to the client that published it [MQTT-3.8.3-3].
    if (e.noLocal && e.subscriber.originId === originKey(msg.origin)) return;
    // A subscription the ACL grants only in part: this topic may not be readable.
    if (e.readGuard !== undefined && !e.readGuard.canRead(msg.topic)) {
      this.metrics.denial('delivery');
      return;
    }
    const qos = (msg.qos < e.qos ? msg.qos : e.qos) as QoS;
    // Live messages carry RETAIN=0 unless Retain As Published [MQTT-3.3.1-12/-13].
    e.subscriber.deliver(msg, qos, msg.retain && e.retainAsPublished, e.subscriptionId !== undefined ? [e.subscriptionId] : undefined);
  }

  // ---- BrokerContext ---------------------------------------------------------------

  warn(conn: Connection, key: string, detail: string): void {
    this.limiter.write(conn.log, 'warn', `${key}:${conn.peer.remoteAddress}`, { reason: key }, detail);
  }

  scheduleFlush(conn: Connection): void {
    this.flushList.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the poll phase, not after each callback: the datagrams and reads of one turn of
      // the event loop share one socket write per connection. A connection whose queue grows
      // past FLUSH_NOW_BYTES within the turn writes at once (Connection.writeRaw), so a burst
      // is not held back until the turn ends.
      setImmediate(this.flushAll);
    }
  }

  /** Connect timeouts and keepalives of every connection, checked by one timer. */
  private readonly sweep = (): void => {
    const now = (this.lastSweepAt = this.clock.now());
    for (const c of this.connections) c.sweep(now);
    this.limits.prune();
  };

  private readonly flushAll = (): void => {
    const list = this.flushList;
    this.flushList = [];
    this.flushScheduled = false;
    for (const c of list) c.flush();
  };

  openSession(conn: Connection, clientId: string, cleanStart: boolean, expiryInterval: number): OpenedSession {
    const stored = this.sessions.get(clientId)?.journal !== undefined;
    const opened = this.lifecycle.open(conn, clientId, cleanStart, expiryInterval);
    // A stored session discarded (clean start, or an expiry of 0 now) must not come back
    // after a crash once CONNACK said so: the answer waits for the commit.
    if (stored && this.journal !== undefined && (cleanStart || opened.session.journal === undefined)) opened.stored = this.journal.committed();
    return opened;
  }

  abandonSession(conn: Connection, session: Session): void {
    if (this.isVacant(session)) this.lifecycle.closed(conn, session);
  }

  isVacant(session: Session): boolean {
    return session.link === undefined && this.sessions.get(session.clientId) === session;
  }

  private newSession(clientId: string): Session {
    return new Session(clientId, this.options, this.metrics, { onDrop: (s, r, m) => this.onDrop(s, r, m) });
  }

  private persistence(session: Session): void {
    if (this.journal !== undefined) writeThrough(this.journal, session);
  }

  addSubscription(session: Session, entry: SubscriptionEntry): boolean {
    const shared = parseSharedFilter(entry.filter);
    const inner = shared !== null && typeof shared !== 'string' ? shared.filter : entry.filter;
    const isNew = this.tree.add(inner, entry);
    session.subscriptions.set(entry.filter, entry);
    session.journal?.saveSubscription(session.clientId, entry);
    return isNew;
  }

  removeSubscription(session: Session, filter: string): boolean {
    const entry = session.subscriptions.get(filter);
    if (entry === undefined) return false;
    session.subscriptions.delete(filter);
    session.journal?.deleteSubscription(session.clientId, filter);
    const shared = parseSharedFilter(filter);
    const inner = shared !== null && typeof shared !== 'string' ? shared.filter : filter;
    return this.tree.remove(inner, session.key, entry.group);
  }

  /** Hands `msg` to one member of the shared subscription `filter` ($share/group/inner); false when none is left. */
  private deliverShared(filter: string, msg: Message): boolean {
    const shared = parseSharedFilter(filter);
    if (shared === null || typeof shared === 'string') return false;
    const e = this.tree.pickShared(shared.filter, shared.group, msg.topic);
    if (e === undefined) return false;
    if (e.readGuard !== undefined && !e.readGuard.canRead(msg.topic)) return false;
    e.subscriber.deliver(msg, Math.min(msg.qos, e.qos) as QoS, msg.retain && e.retainAsPublished, e.subscriptionId !== undefined ? [e.subscriptionId] : undefined);
    return true;
  }

  retainedFor(filter: string): Message[] {
    return this.retained.match(filter, this.clock.now());
  }

  newClientId = (): string => `outpost-${randomBytes(8).toString('hex')}`;

  connectionClosed(conn: Connection): void {
    // One counted in at its TCP accept is released when that socket closes (listen.ts).
    if (this.connections.delete(conn) && conn.peer.countedAtAccept !== true) this.limits.release(conn.peer.remoteAddress);
    this.metrics.closed(conn.peer.listener, this.connections.size);
    const session = conn.session;
    if (session === undefined || session.link !== conn) return;
    conn.session = undefined;
    session.detach();
    if (conn.state !== 'closed' || !conn.graceful) conn.log.info('client connection lost');
    else conn.log.info('client disconnected');
    this.lifecycle.closed(conn, session);
  }

  armExpiry(session: Session, ms: number): void {
    this.lifecycle.armExpiry(session, ms);
  }

  private onDrop(session: Session, reason: DropReason, msg: Message): void {
    const level = reason === 'offline-qos0' ? 'debug' : 'warn';
    this.limiter.write(this.log, level, `drop:${reason}:${session.clientId}`, { clientId: session.clientId, reason, topic: msg.topic }, 'message dropped for client');
  }

  /** Nothing to acquire: listeners bring the connections. */
  async start(): Promise<void> {
    this.closing = false;
    if (this.journal !== undefined && !this.restored) {
      this.restored = true;
      restoreState(this.journal, {
        options: this.options,
        clock: this.clock,
        log: this.log,
        retained: this.retained,
        newSession: (clientId) => {
          const s = this.newSession(clientId);
          this.sessions.set(clientId, s);
          return s;
        },
        addSubscription: (s, e) => this.addSubscription(s, e),
        armExpiry: (s, ms) => this.armExpiry(s, ms),
        armWill: (s, w) => this.lifecycle.armWill(s, w),
        publishWill: (w) => this.lifecycle.publishWill(w),
        earlier: this.earlier,
        applyGrants: (s) => applyReadGrants(s.subscriptions.values(), this.access.grantsFor({ kind: 'mqtt', id: s.clientId, user: s.user })),
      });
    }
  }

  async stop(): Promise<void> {
    await this.close();
  }

  /**
   * Stops accepting, tells v5 clients the server is shutting down (0x8B), closes every
   * connection and waits until they are gone.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    const closed: Promise<void>[] = [];
    for (const conn of this.connections) {
      closed.push(new Promise((resolve) => {
        if (conn.socket.destroyed) return resolve();
        conn.socket.once('close', () => resolve());
      }));
      if (conn.state === 'connected' && conn.version === 5) conn.sendDisconnect('server-shutting-down');
      // A server shutdown is not the client's failure: no Wills now. A persistent session
      // keeps its client's Will for the restart, as after a crash (session-lifecycle.ts).
      if (!conn.graceful) conn.shutdown = true;
      conn.graceful = true;
      conn.end();
    }
    await Promise.all(closed);
    for (const s of this.sessions.values()) {
      s.expiryTimer?.cancel();
      s.willTimer?.cancel();
    }
  }
}
