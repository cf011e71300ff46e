/**
 * The MQTT-SN v1.2 gateway: an aggregating gateway (§4) in which every sensor is an
 * in-process session on the bus, never a TCP connection to the broker.
 *
 *   UDP (v4, v6) ─▶ size bound ─▶ flood guard ─▶ decode ─▶ dispatch ─▶ handlers ─▶ bus
 *        ▲                                (drops counted)                          │
 *        └──────── encode ◀── outbound (REGISTER first, retries, sleep buffer) ◀───┘
 */
import type { Logger } from 'pino';
import type { Bus } from '../core/bus.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Service } from '../core/lifecycle.js';
import type { Message, QoS } from '../core/message.js';
import { allowEverything, type Authorizer } from '../core/authorizer.js';
import type { ProgressProbe } from '../core/progress.js';
import type { MqttsnConfig } from '../config/mqttsn-schema.js';
import { transition, type ClientEvent } from './client-state.js';
import type { SnContext } from './context.js';
import { decode } from './decode.js';
import { DropLog } from './drop-log.js';
import { dispatch } from './dispatch.js';
import { encapsulate, encode } from './encode.js';
import { FloodGuard, floodKeyOf, SourceList } from './guards.js';
import { advertise, GwinfoPacer } from './handlers/discovery.js';
import { MqttsnMetrics, type SnDropReason } from './metrics.js';
import { deliver, hold, resume } from './outbound.js';
import { MsgType, type Packet } from './packets.js';
import { snapshot, type SnQueueStore, type SnSessionStore } from './persistence.js';
import { makePeer, sourceKeyOf, SnSession, unicast, type OutItem, type Peer } from './session.js';
import { restoreSessions } from './restore.js';
import { PredefinedTopics } from './topic-registry.js';
import { dueAt, evictionCandidate, GRACE, moveSessionStamps, nextDeadline } from './supervision.js';
import { isGatewayTopic } from './sys-topics.js';
import type { StampMover } from '../core/clock-steps.js';
import type { DatagramPeer, DatagramTransport } from './transport.js';

const MAX_TIMER_MS = 2_147_483_647;

export interface MqttsnGatewayDeps {
  bus: Bus;
  /** ACL checks for MQTT-SN clients; default: everything allowed. */
  authorizer?: Authorizer;
  transport: DatagramTransport;
  log: Logger;
  clock?: Clock;
  /** broker.max_topic_levels, applied to MQTT-SN topics too; default: no limit. */
  maxTopicLevels?: number;
}

export class MqttsnGateway implements Service, SnContext {
  readonly name = 'mqtt-sn gateway';
  readonly metrics = new MqttsnMetrics();
  readonly clock: Clock;
  readonly bus: Bus;
  readonly authorizer: Authorizer;
  readonly log: Logger;
  /** Replaced as a whole by a live reload (setPredefinedTopics); handlers read it per message. */
  predefined: PredefinedTopics;
  readonly qosMinusOneSources: SourceList;
  readonly gwinfoPacer: GwinfoPacer;
  readonly byId = new Map<string, SnSession>();
  readonly byPeer = new Map<string, SnSession>();
  readonly retryMs: number;
  readonly maxRetries: number;
  readonly maxBuffered: number;
  readonly maxDatagramSize: number;
  readonly maxTopicLevels: number;
  private readonly transport: DatagramTransport;
  private readonly flood: FloodGuard;
  private readonly drops: DropLog;
  private advertiseTimer: TimerHandle | undefined;
  private running = false;
  /** Where persistent sessions are kept (persistence.ts); none: they end with the process. */
  private store: SnSessionStore | undefined;
  /** Where their buffered QoS 1/2 messages are kept (with `store`). */
  private queueStore: SnQueueStore | undefined;

  constructor(
    readonly config: MqttsnConfig,
    deps: MqttsnGatewayDeps,
  ) {
    this.bus = deps.bus;
    this.authorizer = deps.authorizer ?? allowEverything;
    this.transport = deps.transport;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.retryMs = config.retry_interval;
    this.maxRetries = config.max_retries;
    this.maxBuffered = config.max_buffered_messages;
    this.maxDatagramSize = config.max_datagram_size;
    this.maxTopicLevels = deps.maxTopicLevels ?? Infinity;
    this.predefined = PredefinedTopics.fromConfig(config.predefined_topics, config.clients);
    this.qosMinusOneSources = new SourceList(config.qos_minus_one_sources);
    this.gwinfoPacer = new GwinfoPacer(this.clock);
    this.flood = new FloodGuard(this.clock, config.rate_limit.datagrams_per_second, config.rate_limit.burst);
    this.drops = new DropLog(this.metrics, this.log, this.clock);
  }

  get sessionCount(): number {
    return this.byId.size;
  }

  /** The wall clock stepped: each session's deadlines move with it (supervision.ts moveSessionStamps). */
  clockStepped(mover: StampMover): void {
    for (const s of this.byId.values()) moveSessionStamps(s, mover);
  }

  get addresses() {
    return this.transport.addresses;
  }

  /** Datagrams the operating system refused to send (no route, a firewall, no socket of the family). */
  get sendErrors(): number {
    return this.transport.sendErrors;
  }

  /**
   * New predefined topic ids (§6.7) from a reloaded config: they apply to the next message that
   * names a predefined id. Sensors have their ids built in, so a changed id is the operator's
   * deliberate move; registered (REGISTER) ids are per session and stay as they are.
   */
  setPredefinedTopics(global: MqttsnConfig['predefined_topics'], clients: MqttsnConfig['clients']): void {
    this.predefined = PredefinedTopics.fromConfig(global, clients);
  }

  /** Progress: a supervision timer that should have fired by now and did not. */
  readonly progress: ProgressProbe = {
    name: 'mqtt-sn gateway',
    waitingSince: (now) => {
      let due: number | undefined;
      for (const s of this.byId.values()) {
        if (s.timer !== undefined && s.timerDue <= now && (due === undefined || s.timerDue < due)) due = s.timerDue;
      }
      return due;
    },
  };

  /** Sensors (sessions) by client state: active, asleep, awake, disconnected, lost. */
  sensorsByState(): Record<string, number> {
    const out: Record<string, number> = { active: 0, asleep: 0, awake: 0, disconnected: 0, lost: 0 };
    for (const s of this.byId.values()) out[s.state] = (out[s.state] ?? 0) + 1;
    return out;
  }

  /** Each sensor's client id, state and address (status page). */
  sensors(): { clientId: string; state: string; address: string | undefined }[] {
    return [...this.byId.values()].map((s) => ({ clientId: s.clientId, state: s.state, address: s.peer === undefined ? undefined : `${s.peer.address}:${s.peer.port}` }));
  }

  session(clientId: string): SnSession | undefined {
    return this.byId.get(clientId);
  }

  /** Keeps persistent sessions in `store` (their buffered messages in `queue`) from now on; `start` restores them. */
  attachStore(store: SnSessionStore | undefined, queue?: SnQueueStore): void {
    this.store = store;
    this.queueStore = store === undefined ? undefined : queue;
  }

  async start(): Promise<void> {
    this.restore();
    await this.transport.start((buf, from) => this.onDatagram(buf, from));
    this.running = true;
    if (this.config.advertise.interval > 0) {
      advertise(this, this.transport);
      this.advertiseTimer = this.clock.setInterval(() => advertise(this, this.transport), this.config.advertise.interval);
    }
  }

  /** Stops listening; sessions end without Wills (a gateway shutdown is not the sensors' failure). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.advertiseTimer?.cancel();
    this.advertiseTimer = undefined;
    await this.transport.stop();
    // Persistent sessions stay stored: the next start restores them.
    for (const s of [...this.byId.values()]) this.endSession(s, true);
  }

  /** The stored persistent sessions, back as "disconnected" with their subscriptions (restore.ts). */
  private restore(): void {
    if (this.store !== undefined) restoreSessions(this, this.store, this.queueStore);
  }

  buffered(s: SnSession, item: OutItem): void {
    if (this.queueStore === undefined || s.cleanSession || item.qos === 0 || this.byId.get(s.clientId) !== s) return;
    item.rowId = this.queueStore.add(s.clientId, item.msg, item.qos);
  }

  done(item: OutItem): void {
    if (item.rowId === undefined) return;
    this.queueStore?.remove(item.rowId);
    item.rowId = undefined;
  }

  /**
   * Stores the session's changes and calls `ack` once they are committed (at once when
   * nothing needed storing), or `refused` if the commit failed (disk full, store closed).
   */
  afterStored(s: SnSession, ack: () => void, refused: () => void = ack): void {
    this.persist(s);
    const wait = this.store?.committed(s.clientId);
    if (wait === undefined) return ack();
    wait.then(
      () => this.guarded(s, ack),
      (err: unknown) => {
        this.reject('store-failed', s.peer, `session of ${s.clientId} not stored (${(err as Error).message})`);
        this.guarded(s, refused);
      },
    );
  }

  persist(s: SnSession): void {
    const store = this.store;
    if (store === undefined || this.byId.get(s.clientId) !== s) return;
    if (s.cleanSession) {
      if (s.saved !== undefined) {
        store.delete(s.clientId);
        this.queueStore?.clear(s.clientId);
      }
      s.saved = undefined;
      return;
    }
    s.savedSleepMs = s.sleepMs;
    const text = snapshot(s);
    if (text === s.saved) return;
    s.saved = text;
    store.save(s.clientId, text);
  }

  /** Entry point for every datagram (the transport already enforced the size bound). */
  onDatagram(buf: Buffer, from: DatagramPeer): void {
    this.metrics.datagramsIn++;
    if (!this.running) return;
    const source = sourceKeyOf(from);
    if (!this.flood.admit(floodKeyOf(buf, source))) return this.reject('flood', undefined, `datagrams from ${from.address}:${from.port} over the rate limit`);
    const d = decode(buf);
    const peer = makePeer(from, d.ok ? d.encapsulation : undefined, source);
    if (!d.ok) return this.reject(d.reason, peer, `undecodable datagram (${buf.length} octets, type ${d.type ?? '?'})`);
    try {
      dispatch(this, this.transport, peer, d.packet);
    } catch (err) {
      // Only a bug gets here; one sensor's message must not take the gateway down.
      this.metrics.drop('internal-error');
      this.log.error({ err, address: peer.address, port: peer.port, type: d.packet.type }, 'mqtt-sn message handling failed');
    }
  }

  oversized(from: DatagramPeer, size: number): void {
    this.metrics.datagramsIn++;
    this.reject('oversized', undefined, `datagram of ${size} octets from ${from.address}:${from.port} over mqttsn.max_datagram_size`);
  }

  // ---- SnContext -------------------------------------------------------------------

  sendTo(peer: Peer, packet: Packet): number {
    let buf = encode(packet);
    if (peer.encapsulation !== undefined) buf = encapsulate(buf, peer.encapsulation); // the header counts too
    if (buf.length > this.maxDatagramSize) return buf.length;
    this.metrics.datagramsOut++;
    this.transport.send(buf, peer);
    return buf.length;
  }

  send(s: SnSession, packet: Packet): number {
    if (s.peer === undefined) return 0;
    return this.sendTo(unicast(s.peer), packet);
  }

  reply(s: SnSession, packet: Packet): void {
    this.send(s, packet);
  }

  apply(s: SnSession, event: ClientEvent): void {
    const t = transition(s.state, event);
    if (t === undefined) return;
    if (t.state !== s.state) this.log[t.state === 'lost' ? 'info' : 'debug']({ clientId: s.clientId, from: s.state, event }, `mqtt-sn client ${t.state}`);
    s.state = t.state;
    for (const action of t.actions) {
      switch (action) {
        case 'arm-sleep':
          s.sleepDeadline = this.clock.now() + s.sleepMs * GRACE;
          // A new Duration is stored: it bounds how long a restart waits for this sleeper.
          if (s.sleepMs !== s.savedSleepMs) this.persist(s);
          break;
        case 'publish-will':
          this.publishWill(s);
          break;
        case 'deliver-buffered':
          resume(this, s);
          break;
        case 'send-pingresp':
          this.send(s, { type: MsgType.PINGRESP });
          break;
        case 'hold':
          hold(s);
          break;
        case 'arm-keepalive':
        case 'stop-timer':
          break; // armTimer below derives the one supervision timer from the new state
      }
    }
    // s.state, not t.state: an action (a wake-up with nothing buffered) may have moved on.
    if (s.state === 'disconnected' || s.state === 'lost') {
      if (s.peer !== undefined && this.byPeer.get(s.peer.key) === s) this.byPeer.delete(s.peer.key);
      s.peer = undefined;
      if (s.cleanSession) return this.endSession(s);
      s.expiryDeadline = this.clock.now() + this.config.session_expiry;
      // Disconnected, or lost with its Will sent: nothing is owed any more, also after a restart.
      s.ended = true;
      s.willDeadline = undefined;
      this.persist(s);
    }
    if (this.byId.get(s.clientId) === s) this.armTimer(s);
  }

  private publishWill(s: SnSession): void {
    const w = s.will;
    if (w?.topic === undefined) return;
    // The ACL as it is now (it may have been reloaded, or the Will restored from the store,
    // stored before $SYS Will topics were refused).
    if (isGatewayTopic(w.topic) || !this.authorizer.grantsFor(s.origin).canWrite(w.topic)) {
      this.metrics.drop('not-authorized');
      this.log.warn({ clientId: s.clientId, topic: w.topic }, 'will not published: its sensor may not write the topic ($SYS, or the ACL)');
      return;
    }
    this.metrics.willsPublished++;
    this.log.debug({ clientId: s.clientId, topic: w.topic }, 'publishing will');
    const qos = (w.qos < 0 ? 0 : w.qos) as QoS;
    this.bus.publish({ topic: w.topic, payload: w.payload, qos, retain: w.retain, origin: s.origin })?.catch((err: unknown) => {
      this.log.error({ err, topic: w.topic }, 'will message not stored');
    });
  }

  bind(s: SnSession, peer: Peer): void {
    const other = this.byPeer.get(peer.key);
    if (other !== undefined && other !== s) {
      // Another client now owns this address (NAT reuse, a re-flashed sensor): the old one
      // cannot be reached there any more.
      this.byPeer.delete(peer.key);
      other.peer = undefined;
      if (other.connecting !== undefined) this.abandonConnect(other);
      else this.apply(other, 'address-reused');
    }
    if (s.peer !== undefined && s.peer.key !== peer.key && this.byPeer.get(s.peer.key) === s) this.byPeer.delete(s.peer.key);
    s.peer = peer;
    this.byPeer.set(peer.key, s);
  }

  armTimer(s: SnSession): void {
    s.timer?.cancel();
    s.timer = undefined;
    const d = nextDeadline(s);
    if (d === undefined) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, d - this.clock.now()));
    s.timerDue = this.clock.now() + delay;
    s.timer = this.clock.setTimeout(() => this.guarded(s, () => this.onTimer(s)), delay);
  }

  /** A timer callback must never take the process down: a failure is logged, the gateway goes on. */
  guarded(s: SnSession, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, clientId: s.clientId }, 'mqtt-sn timer handling failed');
    }
  }

  /** One timer per session; when it fires, whatever is due happens, else it is re-armed. */
  private onTimer(s: SnSession): void {
    s.timer = undefined;
    if (this.byId.get(s.clientId) !== s) return;
    const due = dueAt(s, this.clock.now());
    // The Will prompts were never answered (§6.2): the CONNECT is abandoned.
    if (due === 'abandon-connect' && this.abandonConnect(s)) return;
    if (due === 'keepalive-expired' || due === 'sleep-expired') return this.apply(s, due);
    if (due === 'not-back') {
      s.willDeadline = undefined;
      return this.apply(s, 'not-back');
    }
    if (due === 'session-expired') return this.endSession(s);
    this.armTimer(s);
  }

  /**
   * A CONNECT refused during its Will prompts (CONNACK ≠ 0x00, §6.2): the client is not
   * connected, whatever it was before, so its next message is answered with DISCONNECT
   * instead of being acted on. Its Will was already dropped by that CONNECT (§6.3): none is owed.
   */
  refuseConnect(s: SnSession): void {
    if (s.state === 'disconnected' || s.state === 'lost') {
      this.abandonConnect(s);
      return;
    }
    s.connecting = undefined;
    this.apply(s, 'disconnect');
  }

  /** Drops a CONNECT still in its Will prompts; true if that ended the session. */
  private abandonConnect(s: SnSession): boolean {
    s.connecting = undefined;
    if (s.state !== 'disconnected' && s.state !== 'lost') return false;
    if (s.peer !== undefined && this.byPeer.get(s.peer.key) === s) this.byPeer.delete(s.peer.key);
    s.peer = undefined;
    if (s.cleanSession) {
      this.endSession(s);
      return true;
    }
    s.expiryDeadline = this.clock.now() + this.config.session_expiry;
    this.armTimer(s);
    return false;
  }

  subscribe(s: SnSession, filter: string, qos: QoS, checkRead = false, retained = true): void {
    const subs = (s.subs ??= new Map());
    subs.get(filter)?.unsubscribe();
    if (checkRead) (s.partialRead ??= new Set()).add(filter);
    // All of a session's filters are one subscriber on the bus (`member`): a message that
    // matches `site/#` and `site/+/temp` reaches the sensor once, at the higher QoS, as
    // overlapping subscriptions of an MQTT 5 session do [MQTT-3.3.4-2].
    const sub = this.bus.subscribe(filter, s.origin, { qos, sendRetained: retained, member: s }, (msg) => this.fromBus(s, msg));
    subs.set(filter, {
      unsubscribe: () => {
        sub.unsubscribe();
        s.partialRead?.delete(filter);
      },
    });
    (s.subQos ??= new Map()).set(filter, qos);
  }

  /**
   * A message for the session. A filter the ACL grants only in part makes every message
   * checked (the one subscriber cannot tell which filter matched; one granted in full
   * matches only readable topics, so the check refuses nothing it lets through).
   */
  private fromBus(s: SnSession, msg: Message): void {
    if (s.partialRead !== undefined && s.partialRead.size > 0 && !this.authorizer.grantsFor(s.origin).canRead(msg.topic)) {
      this.metrics.drop('not-authorized');
      return;
    }
    deliver(this, s, msg);
  }

  newSession(clientId: string): SnSession | undefined {
    if (this.byId.size >= this.config.max_clients) {
      // Sessions nobody is connected to go first, so junk CONNECTs cannot lock real
      // sensors out for a whole session_expiry.
      const evict = evictionCandidate(this.byId.values(), this.clock.now(), this.config.session_expiry);
      if (evict === undefined) {
        this.reject('unexpected', undefined, `session limit mqttsn.max_clients (${this.config.max_clients}) reached`);
        return undefined;
      }
      // Ended before its client came back after a restart: the Will it owes goes out now.
      if (evict.willDeadline !== undefined) this.publishWill(evict);
      this.endSession(evict);
    }
    const s = new SnSession(clientId, this.config.max_topics_per_client);
    this.byId.set(clientId, s);
    return s;
  }

  /** `keepStored`: the gateway stops, the session does not end for its client (see stop). */
  endSession(s: SnSession, keepStored = false): void {
    if (!keepStored && s.saved !== undefined && this.byId.get(s.clientId) === s) {
      this.store?.delete(s.clientId);
      this.queueStore?.clear(s.clientId);
    }
    s.saved = undefined;
    // Stored messages of a session kept for the next start are not lost.
    const kept = keepStored ? s.queue.filter((i) => i.rowId !== undefined).length + (s.flight?.kind === 'publish' && s.flight.item.rowId !== undefined ? 1 : 0) : 0;
    const lost = s.reset() - kept;
    if (lost > 0) this.metrics.drop('session-ended', lost);
    s.timer?.cancel();
    s.timer = undefined;
    s.connecting = undefined;
    if (s.peer !== undefined && this.byPeer.get(s.peer.key) === s) this.byPeer.delete(s.peer.key);
    s.peer = undefined;
    if (this.byId.get(s.clientId) === s) this.byId.delete(s.clientId);
  }

  reject(reason: SnDropReason, peer: Peer | undefined, detail: string): void {
    this.drops.datagram(reason, peer, detail);
  }

  dropped(s: SnSession, reason: SnDropReason, topic: string): void {
    this.drops.message(s.clientId, reason, topic);
  }

  retriesExhausted(s: SnSession): void {
    this.apply(s, 'retries-exhausted');
  }

  flushed(s: SnSession): void {
    this.apply(s, 'flushed');
  }
}
