/**
 * PUBLISH from a client (MQTT-SN v1.2 §6.6, §6.8) onto the bus:
 *
 *   PUBLISH ─ resolve TopicId (registered / predefined §6.7 / short name) ─ bus.publish
 *     QoS 0:  done           QoS 1: PUBACK once the bus accepted it (bridge outbox committed)
 *     QoS 2:  PUBREC once accepted; PUBREL ─▶ PUBCOMP (MsgId de-duplicates retransmissions)
 *     QoS -1: no session, predefined ids and short names only, from configured networks
 *
 * Every PUBACK echoes the TopicId octets of the PUBLISH exactly (a short name's two
 * characters included): the client matches on them.
 */
import type { Message, QoS } from '../../core/message.js';
import { validateTopicName } from '../../core/topic.js';
import type { SnContext } from '../context.js';
import { MsgType, ReturnCode, shortName, type MsgIdOnly, type Publish } from '../packets.js';
import type { Peer, SnSession } from '../session.js';
import { isGatewayTopic } from '../sys-topics.js';
import { tooDeep } from '../topic-limit.js';

const MAX_QOS2_IN = 16;

function topicOf(ctx: SnContext, clientId: string | undefined, s: SnSession | undefined, p: Publish): string | undefined {
  switch (p.topicIdType) {
    case 0:
      return s?.topics.nameOf(p.topicId);
    case 1:
      return ctx.predefined.nameOf(clientId, p.topicId);
    case 2: {
      // Two octets from the sensor become an MQTT topic name as they are: "a#" or a NUL
      // must not reach MQTT subscribers, whose clients would drop the connection for them.
      const name = shortName(p.topicId);
      return name !== undefined && validateTopicName(name).ok ? name : undefined;
    }
  }
}

/** Why a PUBLISH's TopicId names no topic, for the log. */
function unknownTopic(p: Publish): string {
  const octets = `0x${p.topicId.toString(16).padStart(4, '0')}`;
  return p.topicIdType === 2 ? `PUBLISH to short topic name ${octets}, not a valid topic name` : `PUBLISH to unknown topic id ${octets}`;
}

function puback(ctx: SnContext, s: SnSession, p: Publish, returnCode: number): void {
  ctx.reply(s, { type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode });
}

export function onPublish(ctx: SnContext, s: SnSession, p: Publish): void {
  const topic = topicOf(ctx, s.clientId, s, p);
  if (topic === undefined) {
    // Unknown TopicId or an invalid short name: "rejected: invalid topic ID" (§6.6), for
    // QoS 0 too, so the client re-registers (or learns its short name is refused).
    ctx.reject('invalid-topic', s.peer, unknownTopic(p));
    return puback(ctx, s, p, ReturnCode.INVALID_TOPIC_ID);
  }
  // A predefined id (or a short name, or an id registered before the limit was lowered)
  // names a topic MQTT clients could not publish to.
  if (tooDeep(ctx, topic, s.peer, 'PUBLISH to')) return puback(ctx, s, p, ReturnCode.INVALID_TOPIC_ID);
  if (isGatewayTopic(topic)) {
    ctx.reject('not-authorized', s.peer, `PUBLISH to "${topic}" refused: $SYS is reserved for the gateway`);
    return puback(ctx, s, p, ReturnCode.NOT_SUPPORTED);
  }
  if (!ctx.authorizer.grantsFor(s.origin).canWrite(topic)) {
    // Denied by the ACL: the closest v1.2 code is "rejected: not supported" (§5.3.10), for
    // every QoS, so the sensor learns it and does not retry forever.
    ctx.reject('not-authorized', s.peer, `PUBLISH to "${topic}" denied by the ACL`);
    return puback(ctx, s, p, ReturnCode.NOT_SUPPORTED);
  }
  ctx.metrics.publishIn++;
  const qos = p.qos as QoS;
  const msg: Message = { topic, payload: p.payload, qos, retain: p.retain, origin: s.origin };
  if (qos === 0) {
    ctx.bus.publish(msg)?.catch(() => undefined);
    return;
  }
  if (qos === 1) {
    const last = s.lastQos1;
    if (p.dup && last !== undefined && last.msgId === p.msgId) {
      // A retransmission of the message in progress or just acknowledged: not published twice.
      if (last.done) puback(ctx, s, p, ReturnCode.ACCEPTED);
      return;
    }
    const entry = { msgId: p.msgId, done: false, topicId: p.topicId };
    s.lastQos1 = entry;
    const wait = ctx.bus.publish(msg);
    if (wait === undefined) {
      entry.done = true;
      return puback(ctx, s, p, ReturnCode.ACCEPTED);
    }
    wait.then(
      () => {
        entry.done = true;
        puback(ctx, s, p, ReturnCode.ACCEPTED);
      },
      () => {
        // Not accepted (e.g. the outbox refuses when full): the client may retry later.
        if (s.lastQos1 === entry) s.lastQos1 = undefined;
        ctx.reject('publish-refused', s.peer, `publish to ${topic} not accepted`);
        puback(ctx, s, p, ReturnCode.CONGESTION);
      },
    );
    return;
  }
  // QoS 2: exactly once, keyed by MsgId until PUBREL.
  const q2 = (s.qos2In ??= new Map());
  const state = q2.get(p.msgId);
  if (state !== undefined) {
    if (state) ctx.reply(s, { type: MsgType.PUBREC, msgId: p.msgId });
    return;
  }
  // A client has one QoS 1/2 PUBLISH outstanding at a time (§6.6); a few ids of slack cover
  // PUBRELs lost on the way, and the bound keeps a misbehaving client from growing the map.
  if (q2.size >= MAX_QOS2_IN) q2.delete(q2.keys().next().value!);
  q2.set(p.msgId, false);
  const rec = () => {
    if (s.qos2In?.get(p.msgId) === false) s.qos2In.set(p.msgId, true);
    ctx.reply(s, { type: MsgType.PUBREC, msgId: p.msgId });
  };
  const wait = ctx.bus.publish(msg);
  if (wait === undefined) return rec();
  wait.then(rec, () => {
    s.qos2In?.delete(p.msgId);
    ctx.reject('publish-refused', s.peer, `publish to ${topic} not accepted`);
    // PUBACK carries errors for QoS 2 too (§5.4.13).
    puback(ctx, s, p, ReturnCode.CONGESTION);
  });
}

export function onPubrel(ctx: SnContext, s: SnSession, p: MsgIdOnly<0x10>): void {
  // PUBCOMP even for an unknown MsgId: the first PUBCOMP may have been lost.
  s.qos2In?.delete(p.msgId);
  ctx.reply(s, { type: MsgType.PUBCOMP, msgId: p.msgId });
}

/** QoS -1 (§6.8): fire and forget from a client without a connection. */
export function onPublishMinusOne(ctx: SnContext, peer: Peer, p: Publish): void {
  if (!ctx.qosMinusOneSources.has(peer.address)) {
    return ctx.reject('qos-minus-one-source', peer, 'PUBLISH QoS -1 from a source not in mqttsn.qos_minus_one_sources');
  }
  // A connected client's own predefined table applies if the address is known.
  const s = ctx.byPeer.get(peer.key);
  const topic = p.topicIdType === 0 ? undefined : topicOf(ctx, s?.clientId, s, p);
  if (topic === undefined) {
    const why = p.topicIdType === 0 ? 'PUBLISH QoS -1 needs a predefined topic id or a short topic name' : `QoS -1 ${unknownTopic(p)}`;
    return ctx.reject('qos-minus-one-topic', peer, why);
  }
  if (tooDeep(ctx, topic, peer, 'QoS -1 PUBLISH to')) return;
  const origin = { kind: 'mqttsn' as const, id: s?.clientId ?? `qos-1:${peer.address}` };
  if (isGatewayTopic(topic)) return ctx.reject('not-authorized', peer, `PUBLISH QoS -1 to "${topic}" refused: $SYS is reserved for the gateway`);
  if (!ctx.authorizer.grantsFor(origin).canWrite(topic)) {
    return ctx.reject('not-authorized', peer, `PUBLISH QoS -1 to "${topic}" denied by the ACL`);
  }
  ctx.metrics.publishIn++;
  ctx.bus.publish({ topic, payload: p.payload, qos: 0, retain: p.retain, origin })?.catch(() => undefined);
}
