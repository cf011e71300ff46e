/**
 * Our MQTT client towards the cloud broker (3.1.1 or 5, over node:tls or node:net).
 * It has no queue: the forwarder owns the packet ids and the outbox is the queue; after a
 * reconnect the forwarder resends what was in flight. One UpstreamConnection per attempt.
 *
 *   start ─► attempt ─► connection ─► CONNECT ─► CONNACK 0 ─► up ─┐
 *              ▲                        │ refused / error / timeout │ lost
 *              └── backoff (decorrelated jitter, reset on up) ◄─────┘   (down, only after up)
 *   (reset on up: once the link held STABLE_LINK_MS, checked when it is lost)
 *
 * Outbound: PUBLISH → PUBACK → acked; PUBLISH → PUBREC → PUBREL → PUBCOMP → acked [MQTT-4.3.3].
 * A resent QoS 2 publish whose PUBREC already arrived (session kept) is answered with PUBREL.
 * Inbound: PUBLISH → message + PUBACK, or PUBREC with the id remembered until PUBREL, so a
 * resent QoS 2 message is delivered once (method B of [MQTT-4.3.3]).
 * Failures are logged at warn as one sentence naming what to check (upstream-failures.ts),
 * identical ones rate-limited; `stop()` publishes the will (the offline state) and then
 * DISCONNECT 0x00, which tells the broker to discard the will [MQTT-3.14.4-3].
 */
import type { Logger } from 'pino';
import { Backoff, type RandomSource } from '../core/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import type { QoS } from '../core/message.js';
import { encode, encodePublish, type IConnackPacket, type IPublishPacket, type ISubackPacket, type IUnsubackPacket, type Packet } from '../mqtt/codec.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
import type { Upstream, UpstreamEvents, UpstreamOptions, UpstreamPublish } from './upstream.js';
import { UpstreamConnection } from './upstream-connection.js';
import { CLOSE_WINDOW_MS } from './closing-head.js';
import { describeClose, describeConnack, describeDisconnect, describeStateRefused, type Failure } from './upstream-failures.js';
import { ConnectShape } from './connect-shape.js';
import { PacketIds } from './upstream-ids.js';
import { connectPacket, encodeOutbound, inboundOf, MQTT_MAX_PACKET, parseUpstreamUrl, sessionOf } from './upstream-packets.js';

export interface UpstreamDeps {
  log: Logger;
  clock?: Clock;
  random?: RandomSource;
  /** `publish` returns false above this many unsent bytes (default 256 KiB). */
  highWaterMark?: number;
  /** How long `stop()` waits for the broker to close after DISCONNECT (default 2 s). */
  stopGraceMs?: number;
}

/** A link up this long (or the backoff cap, if less) has held: its loss starts the backoff over. */
const STABLE_LINK_MS = 10_000;

export class UpstreamClient implements Upstream {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly limiter: LogRateLimiter;
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private readonly ids = new PacketIds();
  private conn: UpstreamConnection | undefined;
  private isUp = false;
  private started = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private retryTimer: TimerHandle | undefined;
  /** Clock ms of the last turn of the connect loop (an attempt, a close). */
  private lastTurnAt = 0;
  private signal: AbortSignal | undefined;
  private readonly onAbort = (): void => void this.stop();
  /** `publish` returned false for the high-water mark: say `writable` on drain. */
  private wantWritable = false;
  /** SUBSCRIBE and UNSUBSCRIBE waiting for their SUBACK / UNSUBACK, by packet id. */
  private readonly subscribes = new Map<number, { resolve(codes: number[]): void; reject(err: Error): void }>();
  private lastFailure: string | undefined;
  /** The remote's Maximum Packet Size on the current connection. */
  private sessionMaxPacket: number | undefined;
  /** The Will, bridge flag and retain flag of our CONNECT, as the remote's refusals taught them. */
  private readonly shape: ConnectShape;
  /** The remote's Maximum QoS on the current connection: the state messages go at most at it [MQTT-3.2.2-11]. */
  private sessionMaxQos: QoS = 2;
  /** A CONNACK 0 came on some connection of this client (see UpstreamOptions.freshFirstSession). */
  private everUp = false;
  /** The connection that asked for a fresh session because of freshFirstSession (see onConnack). */
  private freshConn: UpstreamConnection | undefined;
  /** Clock ms of the last CONNACK 0 (see STABLE_LINK_MS). */
  private upAt = 0;
  /** stop() waits for the acks of what is in flight: called once none is outstanding or the link is gone. */
  private settled: (() => void) | undefined;
  /** Clock ms of the caller's last QoS 1/2 publish (see withTakeoverHint). */
  private lastCallerSendAt = Number.NEGATIVE_INFINITY;
  /** Topics of our own QoS 1/2 publishes (the state messages) waiting for their ack, by packet id. */
  private readonly directTopics = new Map<number, string>();

  constructor(
    private readonly options: UpstreamOptions,
    private readonly events: UpstreamEvents,
    private readonly deps: UpstreamDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    ({ host: this.host, port: this.port, secure: this.secure } = parseUpstreamUrl(options.url));
    // The caller scopes the logger ({ component, bridge }); lines here also name the remote.
    this.log = deps.log.child({ upstream: `${this.host}:${this.port}` });
    this.shape = new ConnectShape(this.host, this.port, options);
    this.backoff = new Backoff(options.backoff.baseMs, options.backoff.capMs, deps.random);
    this.limiter = new LogRateLimiter(this.clock, 300_000, 3);
    this.ids.seedInbound(options.inboundQos2?.ids ?? []);
  }

  get connected(): boolean {
    return this.isUp;
  }

  /**
   * Progress of the link: started and not stopped, yet no connection and no reconnect timer,
   * so nothing will ever try again. Backoff between attempts (an outage) is waiting, not stuck.
   */
  waitingSince(): number | undefined {
    if (!this.started || this.stopped || this.conn !== undefined || this.retryTimer !== undefined) return undefined;
    return this.lastTurnAt;
  }

  /** The wall clock stepped: a healthy link is not taken for dead, nor a fresh one for stable. */
  clockStepped(deltaMs: number): void {
    this.conn?.clockStepped(deltaMs);
    this.upAt += deltaMs;
    this.lastTurnAt += deltaMs;
  }

  /** The sentence of the last connection failure (for status and metrics). */
  get lastError(): string | undefined {
    return this.lastFailure;
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    if (signal.aborted) return void (await this.stop());
    this.signal = signal;
    signal.addEventListener('abort', this.onAbort, { once: true });
    this.attempt();
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  publish(p: UpstreamPublish): boolean {
    const conn = this.conn;
    if (!this.isUp || conn === undefined) return false;
    if (conn.congested) {
      this.wantWritable = true;
      return false;
    }
    if (p.qos === 2 && this.ids.isReleased(p.packetId)) {
      conn.send(encode({ cmd: 'pubrel', messageId: p.packetId }, this.options.protocolVersion));
      return true;
    }
    // No RETAIN to a broker without retained messages [MQTT-3.2.2-14]: it would close the link (DISCONNECT 0x9A).
    const buf = encodeOutbound(this.shape.noRetain && p.retain ? { ...p, retain: false } : p, this.options.protocolVersion);
    const max = this.sessionMaxPacket;
    if (max !== undefined && buf.length > max) {
      // Sending it would break [MQTT-3.1.2-24]; tell the caller as a refusal, packet too large.
      queueMicrotask(() => this.events.acked(p.packetId, 0x95));
      return true;
    }
    if (p.qos > 0) {
      this.ids.callerSent(p.packetId);
      this.lastCallerSendAt = this.clock.now();
    }
    conn.send(buf);
    return true;
  }

  subscribe(filters: { topic: string; qos: QoS; noLocal?: boolean; retainAsPublished?: boolean }[]): Promise<number[]> {
    const conn = this.conn;
    if (!this.isUp || conn === undefined) return Promise.reject(new OutpostError('BRIDGE_UPSTREAM', 'cannot subscribe: not connected to the cloud broker'));
    const id = this.ids.allocateOwn();
    if (id === undefined) return Promise.reject(new OutpostError('BRIDGE_UPSTREAM', 'cannot subscribe: no free packet id'));
    const v5 = this.options.protocolVersion === 5;
    const subscriptions = filters.map((f) => (v5 ? { topic: f.topic, qos: f.qos, nl: f.noLocal ?? false, rap: f.retainAsPublished ?? false } : { topic: f.topic, qos: f.qos }));
    conn.send(encode({ cmd: 'subscribe', messageId: id, subscriptions }, this.options.protocolVersion));
    return new Promise((resolve, reject) => this.subscribes.set(id, { resolve, reject }));
  }

  unsubscribe(filters: string[]): Promise<number[]> {
    const conn = this.conn;
    if (!this.isUp || conn === undefined) return Promise.reject(new OutpostError('BRIDGE_UPSTREAM', 'cannot unsubscribe: not connected to the cloud broker'));
    const id = this.ids.allocateOwn();
    if (id === undefined) return Promise.reject(new OutpostError('BRIDGE_UPSTREAM', 'cannot unsubscribe: no free packet id'));
    conn.send(encode({ cmd: 'unsubscribe', messageId: id, unsubscriptions: filters }, this.options.protocolVersion));
    // 3.1.1's UNSUBACK has no codes: every filter counts as done (0).
    return new Promise((resolve, reject) => this.subscribes.set(id, { resolve: (codes) => resolve(codes.length > 0 ? codes : filters.map(() => 0)), reject }));
  }

  /** A PINGREQ after everything sent so far; `passed` reports its number once its PINGRESP came. */
  barrier(): number | undefined {
    return this.isUp ? this.conn?.ping() : undefined;
  }

  publishDirect(topic: string, payload: Buffer, qos: QoS, retain: boolean): void {
    const conn = this.conn;
    if (!this.isUp || conn === undefined) return;
    const q = Math.min(qos, this.sessionMaxQos) as QoS;
    const id = q > 0 ? this.ids.allocateOwn() : 0;
    if (id === undefined) return void this.log.warn({ topic }, 'no free packet id for a state message; not sent');
    if (q > 0) this.directTopics.set(id, topic);
    conn.send(encodePublish(topic, payload, q, retain && !this.shape.noRetain, false, id, this.options.protocolVersion));
  }

  // ---- connection attempts --------------------------------------------------------

  private attempt(): void {
    this.retryTimer = undefined;
    this.lastTurnAt = this.clock.now();
    if (this.stopped) return;
    let tls;
    try {
      tls = this.secure ? (this.options.tls?.() ?? {}) : undefined;
    } catch (err) {
      this.failed({ sentence: `cannot read the TLS files for ${this.host}: ${(err as Error).message}: check bridges[].ca, cert and key`, key: 'tls-files' }, false);
      return;
    }
    const conn: UpstreamConnection = new UpstreamConnection(
      { host: this.host, port: this.port, tls },
      {
        connectTimeoutMs: this.options.connectTimeoutMs,
        maxPacketSize: this.options.maxPacketSize ?? MQTT_MAX_PACKET,
        protocolVersion: this.options.protocolVersion,
        highWaterMark: this.deps.highWaterMark ?? 256 * 1024,
        keepalive: this.options.keepalive,
      },
      {
        onOpen: () => {
          const will = this.shape.will();
          let connect: Buffer;
          try {
            const fresh = !this.options.cleanStart && this.options.freshFirstSession === true && !this.everUp;
            this.freshConn = fresh ? conn : undefined;
            connect = encode(connectPacket({ ...this.options, cleanStart: this.options.cleanStart || fresh, will, bridgeMode: this.options.bridgeMode === true && !this.shape.bridgeFlagRefused }), this.options.protocolVersion);
          } catch (err) {
            // Thrown from a socket event, it would stop the whole gateway.
            return conn.fail({ sentence: `cannot make a CONNECT for ${this.host}:${this.port}: ${(err as Error).message}: check bridges[].client_id, username and password`, key: 'connect-encode' });
          }
          conn.sendConnect(connect, this.shape.probeMs());
        },
        onPacket: (packet) => this.onPacket(conn, packet),
        onDrain: () => {
          if (!this.wantWritable || this.conn !== conn || !this.isUp) return;
          this.wantWritable = false;
          this.events.writable();
        },
        onClose: (failure) => this.onClose(conn, failure),
      },
      this.clock,
    );
    this.conn = conn;
    conn.open();
  }

  private onPacket(conn: UpstreamConnection, packet: Packet): void {
    if (conn.phase === 'connack' && packet.cmd !== 'connack') return conn.fail({ sentence: `broker ${this.host}:${this.port} sent ${packet.cmd} before CONNACK: is this an MQTT broker?`, key: 'no-connack' });
    switch (packet.cmd) {
      case 'connack':
        return this.onConnack(conn, packet);
      case 'puback':
      case 'pubcomp':
        return this.onAck(packet.messageId ?? 0, packet.reasonCode ?? 0);
      case 'pubrec': {
        const id = packet.messageId ?? 0;
        const code = packet.reasonCode ?? 0;
        if (code >= 0x80) return this.onAck(id, code); // refused: the flow ends here [MQTT-4.3.3]
        if (!this.ids.isOwn(id)) this.ids.markReleased(id);
        return conn.send(encode({ cmd: 'pubrel', messageId: id }, this.options.protocolVersion));
      }
      case 'publish':
        return this.onInbound(conn, packet);
      case 'pubrel': {
        const id = packet.messageId ?? 0;
        this.ids.inboundReleased(id);
        return this.ackWhenStored(conn, this.options.inboundQos2?.remove(id), { cmd: 'pubcomp', messageId: id });
      }
      case 'suback':
      case 'unsuback':
        return this.onSuback(packet);
      case 'pingresp':
        return this.events.passed?.(conn.pongs);
      case 'disconnect':
        return conn.fail(describeDisconnect(packet.reasonCode ?? 0, packet.properties?.reasonString, this.options.clientId));
      default:
        return conn.fail({ sentence: `broker ${this.host}:${this.port} sent an unexpected ${packet.cmd}`, key: `unexpected:${packet.cmd}` });
    }
  }

  private onConnack(conn: UpstreamConnection, packet: IConnackPacket): void {
    if (conn.phase !== 'connack') return conn.fail({ sentence: `broker ${this.host}:${this.port} sent a second CONNACK`, key: 'connack-twice' });
    const v = this.options.protocolVersion;
    const code = v === 5 ? (packet.reasonCode ?? 0) : (packet.returnCode ?? 0);
    if (code !== 0) return conn.fail(this.shape.refused(code, this.options.bridgeMode === true) ?? describeConnack(code, v));
    if (this.freshConn === conn) {
      // The old session is gone; now take up a new one with Clean Start 0 before sending
      // anything. Mosquitto keeps a session made with Clean Start 1 across its own restart only
      // once a Clean Start 0 connect took it up: without this step, the first cloud restart
      // lost the QoS 2 exchanges in flight and the resent messages reached subscribers twice.
      this.freshConn = undefined;
      this.everUp = true;
      this.log.debug('fresh cloud session made; taking it up');
      conn.send(encode(v === 5 ? { cmd: 'disconnect', reasonCode: 0 } : { cmd: 'disconnect' }, v));
      void conn.end(this.deps.stopGraceMs ?? 2000).then(() => {
        if (!this.stopped && this.conn === undefined && this.retryTimer === undefined) this.attempt();
      });
      return;
    }
    // The broker's Server Keep Alive replaces ours [MQTT-3.2.2-21].
    conn.markUp(packet.properties?.serverKeepAlive ?? this.options.keepalive);
    const session = sessionOf(packet, v);
    // A 3.1.1 remote has no Maximum QoS; one that took us only with a QoS 0 Will is taken to have 0.
    if (v === 4 && this.shape.maximumQoS !== undefined) session.maximumQoS = this.shape.maximumQoS;
    if (!session.sessionPresent) {
      this.ids.newSession();
      this.options.inboundQos2?.clear().catch(() => undefined); // ids of the old session never come back
    }
    this.sessionMaxPacket = session.maximumPacketSize;
    this.sessionMaxQos = session.maximumQoS ?? 2;
    if (session.retainAvailable === false && !this.shape.noRetain) {
      this.shape.noRetainNow();
      this.log.warn('the cloud broker takes no retained messages (Retain Available 0): the state topic and retained messages go without the retain flag');
    }
    const failures = this.backoff.attempts;
    this.shape.connected();
    this.upAt = this.clock.now();
    this.everUp = true;
    this.lastFailure = undefined;
    this.isUp = true;
    this.wantWritable = false;
    this.log.info({ tls: this.secure, sessionPresent: session.sessionPresent, failedAttempts: failures }, 'connected to the cloud broker');
    this.events.up(session);
  }

  private onAck(id: number, code: number): void {
    if (this.ids.releaseOwn(id)) return this.onDirectAck(id, code); // a state message of ours
    this.ids.callerAcked(id);
    this.events.acked(id, code);
    if (this.ids.callerOutstanding === 0) this.settled?.();
  }

  /** A refused state message (PUBACK >= 0x80 [MQTT-3.4.2-1]) is the only sign that the cloud will never show us online. */
  private onDirectAck(id: number, code: number): void {
    const topic = this.directTopics.get(id);
    this.directTopics.delete(id);
    if (code < 0x80 || topic === undefined) return;
    this.log.warn({ topic, reasonCode: code }, describeStateRefused(topic, code));
  }

  private onInbound(conn: UpstreamConnection, p: IPublishPacket): void {
    const id = p.messageId ?? 0;
    const v = this.options.protocolVersion;
    if (p.qos === 2 && !this.ids.inboundFirst(id)) return conn.send(encode({ cmd: 'pubrec', messageId: id }, v)); // resent: delivered already
    this.events.message(inboundOf(p));
    if (p.qos === 1) conn.send(encode({ cmd: 'puback', messageId: id }, v));
    // The id is recorded in the commit that holds the delivery's own rows (inbound-qos2.ts).
    else if (p.qos === 2) this.ackWhenStored(conn, this.options.inboundQos2?.add(id), { cmd: 'pubrec', messageId: id });
  }

  /** Sends the PUBREC / PUBCOMP once the inbound QoS 2 record is committed, on the connection it answers. */
  private ackWhenStored(conn: UpstreamConnection, stored: Promise<void> | undefined, ack: { cmd: 'pubrec' | 'pubcomp'; messageId: number }): void {
    const v = this.options.protocolVersion;
    if (stored === undefined) return conn.send(encode(ack, v));
    const send = (): void => {
      if (this.conn === conn) conn.send(encode(ack, v)); // else the cloud sends it again on the next connection
    };
    stored.then(send, (err: unknown) => {
      this.log.warn({ err: String(err), packetId: ack.messageId }, 'inbound QoS 2 state not stored: a crash before the exchange ends may deliver the message twice');
      send();
    });
  }

  /** SUBACK or UNSUBACK: their codes, one per filter (none in a 3.1.1 UNSUBACK). */
  private onSuback(packet: ISubackPacket | IUnsubackPacket): void {
    const id = packet.messageId ?? 0;
    this.ids.releaseOwn(id);
    this.subscribes.get(id)?.resolve(((packet.granted ?? []) as (number | object)[]).map((g) => (typeof g === 'number' ? g : 0x80)));
    this.subscribes.delete(id);
  }

  private onClose(conn: UpstreamConnection, failure: Failure | undefined): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.lastTurnAt = this.clock.now();
    const wasUp = this.isUp;
    this.isUp = false;
    this.settled?.();
    this.ids.dropOwn();
    this.directTopics.clear();
    for (const w of this.subscribes.values()) w.reject(new OutpostError('BRIDGE_UPSTREAM', 'connection to the cloud broker lost before SUBACK / UNSUBACK'));
    this.subscribes.clear();
    if (failure === undefined || this.stopped) {
      if (wasUp) this.events.down('stopped');
      return;
    }
    failure = wasUp ? this.withTakeoverHint(failure) : this.shape.attemptFailed(failure);
    // A guess is tried again with the flag on the next link: closes from a flaky uplink must not
    // take the retain flag off the state and the retained messages for the rest of the run.
    if (wasUp) this.shape.linkLost();
    if (wasUp) this.events.down(failure.sentence);
    // The backoff starts again from its base only after a link that held: one the broker closes
    // right after CONNACK (a message it cannot take from a 3.1.1 client, another client with our
    // id) would otherwise be reconnected at the base delay for ever, a TLS handshake a second.
    if (wasUp && this.clock.now() - this.upAt >= Math.min(STABLE_LINK_MS, this.options.backoff.capMs)) this.backoff.reset();
    this.failed(failure, wasUp);
  }

  /** A close while connected, no publish just sent and unacknowledged (that one is closing-head.ts's): another client with our id? */
  private withTakeoverHint(failure: Failure): Failure {
    if (failure.key !== describeClose(this.host, this.port, 'up').key) return failure;
    if (this.ids.callerOutstanding > 0 && this.clock.now() - this.lastCallerSendAt <= CLOSE_WINDOW_MS) return failure;
    return describeClose(this.host, this.port, 'up', this.options.clientId);
  }

  /** Logs (rate-limited per kind of failure) and schedules the next attempt. */
  private failed(failure: Failure, wasUp: boolean): void {
    this.lastFailure = failure.sentence;
    const delay = this.backoff.next();
    const suppressed = this.limiter.take(failure.key);
    const fields = { retryInMs: delay, attempt: this.backoff.attempts, ...(suppressed > 0 ? { suppressed } : {}) };
    if (suppressed >= 0) this.log.warn(fields, wasUp ? `link to the cloud broker lost: ${failure.sentence}` : failure.sentence);
    else this.log.debug(fields, failure.sentence);
    this.retryTimer = this.clock.setTimeout(() => this.attempt(), delay);
    if (!wasUp) this.events.attemptFailed?.(failure.sentence, failure.key);
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const conn = this.conn;
    if (conn === undefined) return;
    if (!this.isUp) return conn.destroy();
    // One grace for the whole stop, acks and close: bridges stop one after the other, and on a
    // dead uplink each one waits it out.
    const grace = this.deps.stopGraceMs ?? 2000;
    const since = this.clock.now();
    if (this.ids.callerOutstanding > 0) {
      // Let the exchanges in flight finish before DISCONNECT (the caller sends nothing new by
      // now). A QoS 2 publish the broker took (PUBREC) but whose PUBCOMP had not come would stay
      // in the remote session waiting for a PUBREL that the next client, a reload's or a
      // restart's, does not know to send [MQTT-4.4.0-1]: it holds one of the broker's Receive
      // Maximum for good (later publishes are refused as quota exceeded), and its packet id,
      // when used again, marks a new message as a duplicate.
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimeout(resolve, grace / 2);
        this.settled = () => {
          timer.cancel();
          this.settled = undefined;
          resolve();
        };
      });
      this.settled = undefined;
      if (this.conn !== conn || !this.isUp) return;
    }
    const will = this.options.will;
    // A planned stop: the state topic must still say offline, so publish it ourselves.
    if (will !== undefined) this.publishDirect(will.topic, will.payload, will.qos, will.retain);
    const v = this.options.protocolVersion;
    conn.send(encode(v === 5 ? { cmd: 'disconnect', reasonCode: 0 } : { cmd: 'disconnect' }, v));
    await conn.end(Math.max(0, grace - (this.clock.now() - since)));
  }
}
