/**
 * Messages from the bus to one client (MQTT-SN v1.2 §6.10 gateway's publish procedure):
 *
 *   bus match ─▶ deliver ─▶ queue (bounded; held while asleep/offline) ─▶ pump
 *      pump: topic known to the client?  predefined id (§6.7) / registered id / short name
 *            otherwise REGISTER first (§6.5) and wait for REGACK, then PUBLISH
 *      one REGISTER or QoS 1/2 PUBLISH in flight at a time; T_retry / N_retry (§6.13),
 *      PUBLISH resent with DUP; awake clients get PINGRESP once the buffer is flushed (§6.14)
 *   PUBACK 0x02 "invalid topic ID" (§5.4.13, §6.10): REGISTER a normal id for the name (the
 *      same id again for a normal one; a new one for a predefined id or short name the client
 *      does not know), then resend; at most MAX_TOPIC_REJECTS times, then dropped
 *   PUBACK/REGACK 0x01 "congestion": nothing more is sent to the client for a wait
 *      (T_retry, doubled each time, as a client waits T_WAIT, §6.5/§6.6), then resent;
 *      after N_retry such answers the message is dropped (counted as `sensor-congested`)
 */
import type { Clock } from '../core/clock.js';
import { ownPayload, type Message } from '../core/message.js';
import { canSend } from './client-state.js';
import type { MqttsnMetrics, SnDropReason } from './metrics.js';
import { MsgType, ReturnCode, shortTopicId, type Packet, type Publish, type TopicIdTypeValue } from './packets.js';
import type { OutItem, SnSession } from './session.js';
import type { PredefinedTopics } from './topic-registry.js';

/** PUBACK "invalid topic ID" answers to one message before it is dropped (`topic-id-rejected`). */
export const MAX_TOPIC_REJECTS = 2;
/** Topics per client whose predefined id or short name it rejected that are remembered. */
const MAX_NOT_PREDEFINED = 256;

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

function resolveTopic(h: OutboundHost, s: SnSession, item: OutItem): { type: TopicIdTypeValue; id: number } | undefined {
  const name = item.msg.topic;
  // An id the client learnt for this name (its REGISTER, or the SUBACK of a SUBSCRIBE by
  // name, which names "the topic id used when sending PUBLISH", §5.4.16) comes first, even
  // when the name is also predefined: the client may not know the predefined id.
  const id = s.topics.idOf(name);
  if (id !== undefined && s.topics.isKnown(id)) {
    s.topics.touch(id); // a gateway id in use is the last to give way
    return { type: 0, id };
  }
  // The client rejected this message's topic id: a normal id is REGISTERed for it (§6.10).
  if (item.topicRejects !== undefined || s.notPredefined?.has(name) === true) return undefined;
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
    if (paused(h, s)) break;
    const item = s.queue[0]!;
    const topic = resolveTopic(h, s, item);
    if (topic === undefined) {
      // Gateway-initiated REGISTER (§6.5): the client learns the id before the PUBLISH.
      const id = s.topics.assign(item.msg.topic, false, s.topicInUse);
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
      s.lastQos0Type = topic.type;
      s.lastQos0Id = topic.id;
      s.lastQos0Topic = item.msg.topic;
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
  // A congested sleeper gets its PINGRESP now and the rest at a later wake-up.
  if (s.state === 'awake' && s.flight === undefined && (s.budget <= 0 || s.queue.length === 0 || s.pausedUntil > h.clock.now())) h.flushed(s);
}

/**
 * True while the client asked for a pause ("rejected: congestion"); the pump runs again
 * when it ends. Not for an awake sleeper, which goes back to sleep instead (checkFlushed).
 */
function paused(h: OutboundHost, s: SnSession): boolean {
  const wait = s.pausedUntil - h.clock.now();
  if (wait <= 0) return false;
  if (s.retryTimer === undefined && s.state !== 'awake') {
    s.retryTimer = h.clock.setTimeout(() => h.guarded(s, () => {
      s.retryTimer = undefined;
      if (s.flight === undefined && canSend(s.state)) pump(h, s);
    }), wait);
  }
  return true;
}

/**
 * The client answered "rejected: congestion" for the message at the head (its PUBLISH, or the
 * REGISTER of its topic): it waits, in order, and is sent again with a new MsgId after
 * T_retry × 2^(n-1); the N_retry + 1st such answer drops it. The client's own messages are
 * served meanwhile, and the wait is no retransmission: it never makes the client lost.
 */
function congested(h: OutboundHost, s: SnSession, item: OutItem): boolean {
  item.congested = (item.congested ?? 0) + 1;
  if (item.congested > h.maxRetries) return false;
  s.pausedUntil = h.clock.now() + h.retryMs * 2 ** (item.congested - 1);
  return true;
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
    s.topics.forget(f.topicId);
    h.persist(s);
    const item = s.queue[0];
    if (item !== undefined && !(returnCode === ReturnCode.CONGESTION && congested(h, s, item))) {
      // The client refused the topic: the message waiting for it cannot be delivered.
      s.queue.shift();
      complete(h, s);
      h.done(item);
      h.dropped(s, returnCode === ReturnCode.CONGESTION ? 'sensor-congested' : 'register-refused', item.msg.topic);
    }
  }
  pump(h, s);
}

/** PUBACK: QoS 1 done, or (any QoS) a rejection (§5.4.13). */
export function onPuback(h: OutboundHost, s: SnSession, msgId: number, returnCode: number, topicId = -1): void {
  // MsgId 0: the answer to a QoS 0 PUBLISH (ours carry 0, QoS 1/2 ones never do).
  if (msgId === 0 && returnCode === ReturnCode.INVALID_TOPIC_ID) return qos0Rejected(h, s, topicId);
  const f = s.flight;
  if (f?.kind !== 'publish' || f.msgId !== msgId || f.stage === 'comp') return;
  const item = f.item;
  if (returnCode === ReturnCode.INVALID_TOPIC_ID && (item.topicRejects ?? 0) < MAX_TOPIC_REJECTS) {
    // The client does not know the id (§6.10): a normal id it lost (a reboot) is REGISTERed
    // again under the same number, so a client that still held it reads no other topic; for
    // a predefined id (§6.7) or short name it does not know, a normal id is registered for
    // the name. Later messages on the topic use that id (resolveTopic prefers known ids).
    item.topicRejects = (item.topicRejects ?? 0) + 1;
    if (f.packet.topicIdType === 0) {
      s.topics.unconfirm(f.packet.topicId);
      h.persist(s);
    }
    return retake(h, s, item);
  }
  if (returnCode === ReturnCode.CONGESTION && congested(h, s, item)) return retake(h, s, item);
  if (returnCode === ReturnCode.INVALID_TOPIC_ID) h.dropped(s, 'topic-id-rejected', item.msg.topic);
  else if (returnCode === ReturnCode.CONGESTION) h.dropped(s, 'sensor-congested', item.msg.topic);
  else if (returnCode !== ReturnCode.ACCEPTED) h.dropped(s, 'publish-refused', item.msg.topic);
  land(h, s);
}

/**
 * "Invalid topic ID" for the last QoS 0 PUBLISH: that message is gone (resent, it would
 * overtake the ones sent since), but the next on its topic goes with a normal id REGISTERed
 * first, as for QoS 1/2. A PUBACK naming an earlier QoS 0 PUBLISH is not told apart: ignored.
 */
function qos0Rejected(h: OutboundHost, s: SnSession, topicId: number): void {
  if (s.lastQos0Type < 0 || s.lastQos0Id !== topicId) return;
  const topic = s.lastQos0Topic;
  if (s.lastQos0Type === 0) {
    s.topics.unconfirm(topicId);
    h.persist(s);
  } else {
    // Bounded like the topic table: a client rejecting every predefined name starts over.
    if ((s.notPredefined?.size ?? 0) >= MAX_NOT_PREDEFINED) s.notPredefined = undefined;
    (s.notPredefined ??= new Set()).add(topic);
  }
  s.lastQos0Type = -1;
  h.dropped(s, 'topic-id-rejected', topic);
}

/** The PUBLISH in flight was rejected: its message goes back to the head of the queue, to be sent anew. */
function retake(h: OutboundHost, s: SnSession, item: OutItem): void {
  hold(s);
  s.flight = undefined;
  s.queue.unshift(item);
  pump(h, s);
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
