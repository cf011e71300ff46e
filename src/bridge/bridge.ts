/**
 * One bridge to one cloud broker.
 *
 *   local bus ──selects(out rules)──▶ accept: outbox.append (PUBACK waits for the commit)
 *                                           │ watch
 *                                           ▼
 *                                      Forwarder ──▶ Upstream (TLS) ──▶ cloud
 *   local bus ◀── publish (in rules, origin bridge:<name>) ◀── Upstream ◀── cloud
 *
 * Loops: a message the bridge brought in is never taken out again by the same bridge,
 * and MQTT 5 subscriptions on the cloud use No Local so our own publishes do not echo.
 */
import type { Logger } from 'pino';
import type { Bus, DurableSink } from '../core/bus.js';
import type { Authorizer } from '../core/authorizer.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
import type { Clock } from '../core/clock.js';
import type { Service } from '../core/lifecycle.js';
import type { ProgressProbe } from '../core/progress.js';
import { sameValue } from '../core/same-value.js';
import { makeOrigin, type Message, type Origin, type QoS } from '../core/message.js';
import type { Outbox, OutboxStats } from '../store/outbox.js';
import type { RemoteFilterStore } from '../store/remote-filters.js';
import { Forwarder } from './forwarder.js';
import type { IdentityMode } from './identity.js';
import { compileRules, inboundRule, outboundRule, responseToLocal, responseToRemote, toLocal, toRemote, type Rule, type RuleInput } from './rules.js';
import type { InboundMessage, Upstream, UpstreamEvents, UpstreamOptions, UpstreamSession } from './upstream.js';

export interface BridgeSettings {
  name: string;
  upstream: Omit<UpstreamOptions, 'will'>;
  /** Retained remote topic for online/offline (the remote Last Will keeps it honest). */
  stateTopic: string;
  inflight: number;
  order?: 'strict' | 'live-first';
  identity: IdentityMode;
  rate?: { msgsPerSec?: number; bytesPerSec?: number };
  rules: readonly RuleInput[];
  limits: Parameters<Outbox['configure']>[1];
}

export interface BridgeDeps {
  bus: Bus;
  outbox: Outbox;
  /** The filters the cloud session may hold, kept across restarts. */
  remoteFilters: RemoteFilterStore;
  log: Logger;
  clock: Clock;
  createUpstream(options: UpstreamOptions, events: UpstreamEvents): Upstream;
  /** ACL checks for inbound messages (`bridge <name>` sections); default: everything allowed. */
  authorizer?: Authorizer;
}

export type BridgeState = 'down' | 'up';

export class Bridge implements Service, DurableSink {
  readonly name: string;
  private readonly rules: Rule[];
  private readonly origin: Origin;
  private readonly upstream: Upstream;
  private readonly forwarder: Forwarder;
  private removeSink: (() => void) | undefined;
  private unwatch: (() => void) | undefined;
  private state: BridgeState = 'down';
  /**
   * denied: inbound messages the ACL did not let this bridge publish locally;
   * unmatched: inbound messages no inbound rule takes (dropped).
   */
  readonly counters = { reconnects: 0, connectFailures: 0, inbound: 0, denied: 0, unmatched: 0 };
  private deniedLog: LogRateLimiter | undefined;
  /**
   * Why the last attempt to connect failed, while the link is down: the sentence logged, and its
   * kind (the stable key of src/bridge/upstream-failures.ts, e.g. `connect-too-large`).
   */
  lastFailure: { sentence: string; key: string; at: number } | undefined;

  constructor(
    private readonly settings: BridgeSettings,
    private readonly deps: BridgeDeps,
  ) {
    this.name = settings.name;
    this.rules = compileRules(settings.name, settings.rules);
    this.origin = makeOrigin('bridge', settings.name);
    const events: UpstreamEvents = {
      up: (s) => this.onUp(s),
      down: (reason) => this.onDown(reason),
      acked: (id, code) => this.forwarder.onAcked(id, code),
      message: (m) => this.onInbound(m),
      writable: () => this.forwarder.onWritable(),
      passed: (n) => this.forwarder.onPassed(n),
      attemptFailed: (sentence, key) => {
        this.counters.connectFailures++;
        this.lastFailure = { sentence, key, at: deps.clock.now() };
      },
    };
    const will = { topic: settings.stateTopic, payload: Buffer.from('offline'), qos: 1 as QoS, retain: true };
    // No loops with a 3.1.1 cloud either: it has no No Local, so without the bridge flag the
    // cloud sends a both-rule publish straight back and local subscribers get it twice (issue 4).
    const bridgeMode = settings.upstream.protocolVersion === 4 && this.rules.some((r) => r.direction !== 'out');
    // A crash or a stop that could not wait for the last acks leaves QoS 2 exchanges half done in
    // the remote session; each holds one of the cloud's Receive Maximum until its packet id is used
    // again (Mosquitto then refuses publishes as quota exceeded, and the retries reorder them). A
    // bridge that takes nothing in loses nothing with a fresh session on its first connect.
    const freshFirstSession = this.rules.every((r) => r.direction === 'out');
    this.upstream = deps.createUpstream({ ...settings.upstream, will, bridgeMode, freshFirstSession }, events);
    this.forwarder = new Forwarder(
      { bridge: settings.name, inflight: settings.inflight, order: settings.order, identity: settings.identity, rate: settings.rate },
      deps.outbox,
      this.upstream,
      deps.clock,
      deps.log,
    );
  }

  /** Local retained topic telling local apps whether the cloud link is up. */
  get localStateTopic(): string {
    return `$SYS/outpost/bridge/${this.name}/state`;
  }

  /** The wall clock stepped: rows read from the outbox before it move with it (Forwarder.clockStepped), and the link's keepalive. */
  clockStepped(deltaMs: number): void {
    this.forwarder.clockStepped(deltaMs);
    this.upstream.clockStepped?.(deltaMs);
  }

  /** Progress of the forwarder (Forwarder.waitingSince) and of the link's reconnect loop. */
  get progressProbes(): ProgressProbe[] {
    const probes: ProgressProbe[] = [{ name: `bridge ${this.name} forwarder`, waitingSince: () => this.forwarder.waitingSince() }];
    const up = this.upstream;
    if (up.waitingSince !== undefined) probes.push({ name: `bridge ${this.name} link`, waitingSince: () => up.waitingSince?.() });
    return probes;
  }

  /** Messages sent to the cloud (first sends, not resends). */
  get outbound(): number {
    return this.forwarder.counters.sent;
  }

  /**
   * Carries on the counts of the bridge this one replaces on a reload, so the counters of a
   * bridge name only ever rise (a drop reads as a process restart to Prometheus).
   */
  continueCountsOf(previous: Bridge): void {
    for (const k of Object.keys(this.counters) as Array<keyof Bridge['counters']>) this.counters[k] += previous.counters[k];
    const mine = this.forwarder.counters;
    for (const k of Object.keys(mine) as Array<keyof typeof mine>) mine[k] += previous.forwarder.counters[k];
  }

  get linkState(): BridgeState {
    return this.state;
  }

  /**
   * The outbox's numbers, with the rows the forwarder dropped undelivered added to its drops:
   * those the cloud refused for good (PUBACK 0x87 and the like) and those larger than it takes.
   */
  backlog(): OutboxStats & { inflight: number } {
    const stats = this.deps.outbox.stats(this.name);
    const { refused, tooLarge } = this.forwarder.counters;
    const drops = { ...stats.drops, ...(refused > 0 ? { 'cloud-refused': refused } : {}), ...(tooLarge > 0 ? { 'too-large': tooLarge } : {}) };
    return { ...stats, drops, inflight: this.forwarder.inflightCount };
  }

  async start(signal: AbortSignal): Promise<void> {
    this.deps.outbox.configure(this.name, this.settings.limits);
    this.unwatch = this.deps.outbox.watch(this.name, () => this.forwarder.onCommitted());
    this.removeSink = this.deps.bus.addDurableSink(this);
    this.publishLocalState('down');
    // Connecting happens in the background: a slow DNS or TLS handshake never holds
    // up the gateway's start or its local traffic.
    await this.upstream.start(signal);
  }

  async stop(): Promise<void> {
    this.removeSink?.();
    this.removeSink = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    this.forwarder.stop();
    await this.upstream.stop();
    // The cloud's last acks may be held for the commit delay: commit them now, so the
    // backlog a stopped bridge reports is what it still owes. A failed commit only means
    // those messages are sent again.
    await this.deps.outbox.flush().catch(() => undefined);
  }

  // ---- DurableSink: the outbound side ---------------------------------------------

  selects(msg: Message): boolean {
    if (msg.origin.kind === 'bridge' && msg.origin.id === this.name) return false;
    return outboundRule(this.rules, msg.topic) !== undefined;
  }

  /**
   * Commits the message to the outbox under its remote topic and QoS. A publisher that is
   * told of a refusal and sends again (MQTT, MQTT-SN, QoS 1/2) gets all or nothing across
   * the bridges: the bus hands every bridge the same message object, which is the group
   * (src/store/append-groups.ts).
   */
  accept(msg: Message): Promise<void> {
    const rule = outboundRule(this.rules, msg.topic)!;
    const out: Message = { ...msg, topic: toRemote(rule, msg.topic), qos: rule.qos, retain: msg.retain };
    const response = msg.properties?.responseTopic;
    if (response !== undefined) {
      const remote = responseToRemote(this.rules, response);
      if (remote !== response) out.properties = { ...msg.properties, responseTopic: remote };
    }
    const resent = msg.qos > 0 && (msg.origin.kind === 'mqtt' || msg.origin.kind === 'mqttsn');
    return this.deps.outbox.append(this.name, out, resent ? msg : undefined);
  }

  // ---- upstream events ------------------------------------------------------------

  private onUp(session: UpstreamSession): void {
    this.state = 'up';
    this.lastFailure = undefined;
    this.deps.log.info({ sessionPresent: session.sessionPresent, receiveMaximum: session.receiveMaximum, backlog: this.deps.outbox.stats(this.name).rows }, 'bridge up');
    this.upstream.publishDirect(this.settings.stateTopic, Buffer.from('online'), 1, true);
    this.publishLocalState('up');
    this.subscribeInbound(session.sessionPresent);
    this.forwarder.onUp(session);
  }

  /**
   * SUBSCRIBE for the inbound rules, and UNSUBSCRIBE for filters a resumed remote session
   * still holds from rules that are gone (a reload or restart removed or re-prefixed
   * them): the cloud would go on sending, and queueing while we are away, messages that
   * no rule takes, on an uplink that may be paid by the byte. What the session may hold
   * is saved before SUBSCRIBE goes out, so a crash in between forgets nothing.
   */
  private subscribeInbound(sessionPresent: boolean): void {
    const inbound = this.rules.filter((r) => r.direction !== 'out');
    const wanted = [...new Set(inbound.map((r) => r.remoteFilter))];
    const saved = this.readRemoteFilters();
    // A new session (session present 0) holds none of them.
    const held = sessionPresent ? saved : [];
    const stale = held.filter((f) => !wanted.includes(f));
    const mayHold = [...new Set([...held, ...wanted])];
    if (!sameValue(mayHold, saved)) this.saveRemoteFilters(mayHold);
    if (stale.length > 0) {
      this.upstream
        .unsubscribe(stale)
        .then((codes) => {
          // 0x11: the cloud had no such subscription, which is what we wanted too.
          const kept = stale.filter((_, i) => (codes[i] ?? 0) >= 0x80 && codes[i] !== 0x11);
          const gone = stale.filter((f) => !kept.includes(f));
          this.deps.log.info({ filters: gone, ...(kept.length > 0 ? { refused: kept } : {}) }, 'unsubscribed from remote filters no inbound rule uses any more');
          this.saveRemoteFilters([...wanted, ...kept]);
        })
        .catch((err: unknown) => this.deps.log.warn({ err: String(err), filters: stale }, 'unsubscribe from stale remote filters not confirmed; tried again on the next connect'));
    }
    if (inbound.length > 0) {
      // Retain As Published: a message the cloud takes as retained while we are connected stays
      // retained here too (without it, a broker clears the flag on live delivery [MQTT-3.3.1-9]),
      // as it does from a 3.1.1 cloud that knows the bridge flag.
      this.upstream
        .subscribe(inbound.map((r) => ({ topic: r.remoteFilter, qos: r.qos, noLocal: true, retainAsPublished: true })))
        .then((codes) => {
          codes.forEach((c, i) => {
            if (c >= 0x80) this.deps.log.error({ filter: inbound[i]!.remoteFilter, code: c }, 'cloud refused an inbound subscription');
          });
        })
        .catch((err: unknown) => this.deps.log.warn({ err: String(err) }, 'inbound subscription not confirmed'));
    }
  }

  private readRemoteFilters(): string[] {
    try {
      return this.deps.remoteFilters.get(this.name);
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'remote filters of the last session not readable; stale ones stay subscribed');
      return [];
    }
  }

  private saveRemoteFilters(filters: string[]): void {
    try {
      this.deps.remoteFilters.save(this.name, filters);
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'remote filters not saved; a filter a later config drops may stay subscribed on the cloud');
    }
  }

  private onDown(reason: string): void {
    if (this.state === 'up' && reason !== 'stopped') {
      this.counters.reconnects++;
      this.deps.log.warn({ reason, backlog: this.deps.outbox.stats(this.name).rows, inflight: this.forwarder.inflightCount }, 'bridge down');
    }
    this.state = 'down';
    this.forwarder.onDown(reason === 'stopped');
    this.publishLocalState('down');
  }

  private onInbound(m: InboundMessage): void {
    const rule = inboundRule(this.rules, m.topic);
    if (rule === undefined) {
      // No rule takes it: a subscription we could not drop, or a cloud that sends unasked.
      this.counters.unmatched++;
      return;
    }
    this.counters.inbound++;
    const msg: Message = { topic: toLocal(rule, m.topic), payload: m.payload, qos: Math.min(m.qos, rule.qos) as QoS, retain: m.retain, origin: this.origin };
    if (this.deps.authorizer !== undefined && !this.deps.authorizer.grantsFor(this.origin).canWrite(msg.topic)) {
      // Not published locally; the cloud still gets its acknowledgement (a refusal would only
      // make it send the same message again). Counted and logged rate-limited.
      this.counters.denied++;
      (this.deniedLog ??= new LogRateLimiter(this.deps.clock)).write(this.deps.log, 'warn', msg.topic, { topic: msg.topic }, 'inbound message denied by the ACL');
      return;
    }
    if (m.properties !== undefined) {
      const { messageExpiryInterval, ...rest } = m.properties;
      if (rest.responseTopic !== undefined) rest.responseTopic = responseToLocal(this.rules, rest.responseTopic);
      if (Object.keys(rest).length > 0) msg.properties = rest;
      if (messageExpiryInterval !== undefined) msg.expiresAt = this.deps.clock.now() + messageExpiryInterval * 1000;
    }
    const wait = this.deps.bus.publish(msg);
    wait?.catch((err: unknown) => this.deps.log.error({ err: String(err), topic: msg.topic }, 'inbound message not stored'));
  }

  private publishLocalState(state: BridgeState): void {
    // A promise when a persistent session gets it: a failed commit is logged, never an unhandled rejection.
    this.deps.bus
      .publish({ topic: this.localStateTopic, payload: Buffer.from(state), qos: 1, retain: true, origin: { kind: 'system', id: 'outpost' } })
      ?.catch((err: unknown) => this.deps.log.warn({ err: String(err), topic: this.localStateTopic }, 'link state not stored'));
  }
}
