/**
 * Messages from the bus to one client (MQTT-SN v1.2 §6.10 gateway's publish procedure):
 *
 *   bus match ─▶ deliver ─▶ queue (bounded; held while asleep/offline) ─▶ pump
 *      pump: topic known to the client?  predefined id (§6.7) / registered id / short name
 *            otherwise REGISTER first (§6.5) and wait for REGACK, then PUBLISH
 *      one REGISTER or QoS 1/2 PUBLISH in flight at a time; T_retry / N_retry (§6.13),
 *      PUBLISH resent with DUP; awake clients get PINGRESP once the buffer is flushed (§6.14)
 */
import type { Clock } from '../core/clock.js';
import { ownPayload, type Message } from '../core/message.js';
import { canSend } from './client-state.js';
import type { MqttsnMetrics, SnDropReason } from './metrics.js';
import { MsgType, ReturnCode, shortTopicId, type Packet, type Publish, type TopicIdTypeValue } from './packets.js';
import type { OutItem, SnSession } from './session.js';
import type { PredefinedTopics } from './topic-registry.js';

export interface OutboundHost {
  readonly clock: Clock;
  readonly metrics: MqttsnMetrics;
  readonly predefined: PredefinedTopics;
  readonly retryMs: number;
  readonly maxRetries: number;
  readonly maxBuffered: number;
  readonly maxDatagramSize: number;
  send(session: SnSession, packet: Packet): number;
  dropped(session: SnSession, reason: SnDropReason, topic: string): void;
  retriesExhausted(session: SnSession): void;
  /** Everything buffered at wake-up went out (and was acknowledged). */
  flushed(session: SnSession): void;
  /** Runs a timer callback, logging instead of throwing. */
  guarded(session: SnSession, fn: () => void): void;
  /** The session's durable part may have changed: stored if it did (persistence.ts). */
  persist(session: SnSession): void;
  /** A message joins the buffer: stored if the session is persistent (sets item.rowId). */
  buffered(session: SnSession, item: OutItem): void;
  /** A buffered message left for good (sent at QoS 0, acknowledged, or dropped): unstored. */
  done(item: OutItem): void;
}

/** A bus message matched one of the client's subscriptions. */
export function deliver(h: OutboundHost, s: SnSession, msg: Message): void {
  if ((s.state === 'disconnected' || s.state === 'lost') && msg.qos === 0) {
    return h.dropped(s, 'offline-qos0', msg.topic);
  }
  // Sleeping clients get QoS 0 too, buffered (MQTT-SN 1.2 §6.14 leaves it open; the TC's
  // MQTT-554 resolution allows it): a sensor that sleeps 59 minutes of 60 would miss everything.
  if (s.queue.length >= h.maxBuffered) return h.dropped(s, 'buffer-full', msg.topic);
  // Kept until the client takes it: not as a view pinning a larger buffer (core/message.ts).
  const item: OutItem = { msg: ownPayload(msg), qos: msg.qos };
  h.buffered(s, item);
  s.queue.push(item);
  if (s.flight === undefined && canSend(s.state)) pump(h, s);
}

function resolveTopic(h: OutboundHost, s: SnSession, name: string): { type: TopicIdTypeValue; id: number } | undefined {
  // An id the client learnt for this name (its REGISTER, or the SUBACK of a SUBSCRIBE by
  // name, which names "the topic id used when sending PUBLISH", §5.4.16) comes first, even
  // when the name is also predefined: the client may not know the predefined id.
  const id = s.topics.idOf(name);
  if (id !== undefined && s.topics.isKnown(id)) return { type: 0, id };
  const pre = h.predefined.idOf(s.clientId, name);
  if (pre !== undefined) return { type: 1, id: pre };
  const short = shortTopicId(name);
  if (short !== undefined) return { type: 2, id: short };
  return undefined;
}

/** Sends what the state allows, in order; stops at the first exchange that needs an answer. */
export function pump(h: OutboundHost, s: SnSession): void {
  while (s.flight === undefined && s.queue.length > 0 && canSend(s.state) && s.peer !== undefined) {
    if (s.state === 'awake' && s.budget <= 0) break;
    const item = s.queue[0]!;
    const topic = resolveTopic(h, s, item.msg.topic);
    if (topic === undefined) {
      // Gateway-initiated REGISTER (§6.5): the client learns the id before the PUBLISH.
      const id = s.topics.assign(item.msg.topic, false);
      if (id === undefined) {
        s.queue.shift();
        h.done(item);
        complete(h, s);
        h.dropped(s, 'topic-table-full', item.msg.topic);
        continue;
      }
      const msgId = s.allocateMsgId();
      if (h.send(s, { type: MsgType.REGISTER, topicId: id, msgId, topicName: item.msg.topic }) > h.maxDatagramSize) {
        // A topic name too long for one datagram can never be registered: waiting for a
        // REGACK that cannot come would end in N_retry and a client wrongly lost.
        s.topics.forget(id);
        s.queue.shift();
        h.done(item);
        complete(h, s);
        h.dropped(s, 'too-large-out', item.msg.topic);
        continue;
      }
      s.flight = { kind: 'register', msgId, topicId: id, retries: 0 };
      armRetry(h, s);
      return;
    }
    s.queue.shift();
    const packet: Publish = {
      type: MsgType.PUBLISH,
      dup: false,
      qos: item.qos,
      retain: item.msg.retain,
      topicIdType: topic.type,
      topicId: topic.id,
      msgId: item.qos === 0 ? 0 : s.allocateMsgId(),
      payload: item.msg.payload,
    };
    const size = h.send(s, packet);
    if (size > h.maxDatagramSize) {
      h.done(item);
      complete(h, s);
      h.dropped(s, 'too-large-out', item.msg.topic);
      continue;
    }
    h.metrics.publishOut++;
    if (item.qos === 0) {
      h.done(item);
      complete(h, s);
      continue;
    }
    s.flight = { kind: 'publish', msgId: packet.msgId, item, packet, stage: item.qos === 1 ? 'ack' : 'rec', retries: 0 };
    armRetry(h, s);
    return;
  }
  checkFlushed(h, s);
}

/** One buffered message is done (sent at QoS 0, acknowledged, or dropped). */
function complete(h: OutboundHost, s: SnSession): void {
  if (s.state === 'awake') s.budget--;
}

function checkFlushed(h: OutboundHost, s: SnSession): void {
  if (s.state === 'awake' && s.flight === undefined && (s.budget <= 0 || s.queue.length === 0)) h.flushed(s);
}

/** The client can be sent to again (CONNECT, or PINGREQ wake-up): resend what was in flight, then drain. */
export function resume(h: OutboundHost, s: SnSession): void {
  if (s.state === 'awake') s.budget = s.queue.length + (s.flight !== undefined ? 1 : 0);
  if (s.flight !== undefined) {
    s.flight.retries = 0;
    resend(h, s);
    armRetry(h, s);
    return;
  }
  pump(h, s);
}

/** Stops retransmitting while the client cannot be reached; the flight is kept and resent later. */
export function hold(s: SnSession): void {
  s.retryTimer?.cancel();
  s.retryTimer = undefined;
}

function resend(h: OutboundHost, s: SnSession): void {
  const f = s.flight!;
  h.metrics.retransmissions++;
  if (f.kind === 'register') {
    h.send(s, { type: MsgType.REGISTER, topicId: f.topicId, msgId: f.msgId, topicName: s.topics.nameOf(f.topicId) ?? '' });
  } else if (f.stage === 'comp') {
    h.send(s, { type: MsgType.PUBREL, msgId: f.msgId });
  } else {
    h.send(s, { ...f.packet, dup: true }); // DUP: a retransmission (§5.3.4)
  }
}

function armRetry(h: OutboundHost, s: SnSession): void {
  s.retryTimer?.cancel();
  s.retryTimer = h.clock.setTimeout(() => h.guarded(s, () => {
    s.retryTimer = undefined;
    const f = s.flight;
    if (f === undefined || !canSend(s.state)) return;
    if (f.retries >= h.maxRetries) return h.retriesExhausted(s);
    f.retries++;
    resend(h, s);
    armRetry(h, s);
  }), h.retryMs);
}

function land(h: OutboundHost, s: SnSession): void {
  hold(s);
  if (s.flight?.kind === 'publish') h.done(s.flight.item);
  s.flight = undefined;
  complete(h, s);
  pump(h, s);
}

export function onRegack(h: OutboundHost, s: SnSession, msgId: number, returnCode: number): void {
  const f = s.flight;
  if (f?.kind !== 'register' || f.msgId !== msgId) return;
  hold(s);
  s.flight = undefined;
  if (returnCode === ReturnCode.ACCEPTED) {
    s.topics.confirm(f.topicId);
    h.persist(s);
  } else {
    // The client refused the topic: the message waiting for it cannot be delivered.
    const item = s.queue.shift();
    s.topics.forget(f.topicId);
    h.persist(s);
    complete(h, s);
    if (item !== undefined) {
      h.done(item);
      h.dropped(s, 'register-refused', item.msg.topic);
    }
  }
  pump(h, s);
}

/** PUBACK: QoS 1 done, or (any QoS) a rejection (§5.4.13). */
export function onPuback(h: OutboundHost, s: SnSession, msgId: number, returnCode: number): void {
  const f = s.flight;
  if (f?.kind !== 'publish' || f.msgId !== msgId || f.stage === 'comp') return;
  if (returnCode === ReturnCode.INVALID_TOPIC_ID && f.packet.topicIdType === 0 && f.item.reregistered !== true) {
    // The client lost the registration (a reboot): register again and resend, once.
    s.topics.forget(f.packet.topicId);
    h.persist(s);
    hold(s);
    s.flight = undefined;
    s.queue.unshift({ ...f.item, reregistered: true });
    return pump(h, s);
  }
  if (returnCode !== ReturnCode.ACCEPTED) h.dropped(s, 'publish-refused', f.item.msg.topic);
  land(h, s);
}

export function onPubrec(h: OutboundHost, s: SnSession, msgId: number): void {
  const f = s.flight;
  if (f?.kind !== 'publish' || f.msgId !== msgId || f.item.qos !== 2) return;
  f.stage = 'comp';
  f.retries = 0;
  h.send(s, { type: MsgType.PUBREL, msgId });
  armRetry(h, s);
}

export function onPubcomp(h: OutboundHost, s: SnSession, msgId: number): void {
  const f = s.flight;
  if (f?.kind !== 'publish' || f.msgId !== msgId || f.stage !== 'comp') return;
  land(h, s);
}
