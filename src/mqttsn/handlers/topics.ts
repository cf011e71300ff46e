/**
 * REGISTER (§6.5), SUBSCRIBE and UNSUBSCRIBE (§6.9) from a client.
 *
 * SUBSCRIBE names a topic by name (possibly with wildcards), by predefined id or by
 * short name. SUBACK is sent before the bus subscription is made, so retained messages
 * (delivered by the subscription itself) always follow the SUBACK.
 */
import { hasWildcard, parseSharedFilter, validateTopicFilter, validateTopicName } from '../../core/topic.js';
import type { SnContext } from '../context.js';
import { MsgType, ReturnCode, shortName, type Register, type Subscribe, type Unsubscribe } from '../packets.js';
import type { SnSession } from '../session.js';
import { tooDeep } from '../topic-limit.js';

export function onRegister(ctx: SnContext, s: SnSession, p: Register): void {
  if (!validateTopicName(p.topicName).ok) {
    ctx.reject('invalid-topic', s.peer, 'REGISTER with an invalid topic name');
    return ctx.reply(s, { type: MsgType.REGACK, topicId: 0, msgId: p.msgId, returnCode: ReturnCode.INVALID_TOPIC_ID });
  }
  if (tooDeep(ctx, p.topicName, s.peer, 'REGISTER of')) {
    return ctx.reply(s, { type: MsgType.REGACK, topicId: 0, msgId: p.msgId, returnCode: ReturnCode.INVALID_TOPIC_ID });
  }
  // A full table first gives up the least recently used id the gateway REGISTERed (one not
  // in an exchange): the sensor's own REGISTER comes before wildcard deliveries.
  const id = s.topics.assign(p.topicName, true, s.topicInUse);
  if (id === undefined) {
    // The per-client table is full of the client's own ids: "rejected: congestion" (§5.3.10), the client may retry later.
    ctx.reject('topic-table-full', s.peer, `topic table full (${ctx.config.max_topics_per_client})`);
    return ctx.reply(s, { type: MsgType.REGACK, topicId: 0, msgId: p.msgId, returnCode: ReturnCode.CONGESTION });
  }
  ctx.afterStored(
    s,
    () => ctx.reply(s, { type: MsgType.REGACK, topicId: id, msgId: p.msgId, returnCode: ReturnCode.ACCEPTED }),
    () => ctx.reply(s, { type: MsgType.REGACK, topicId: 0, msgId: p.msgId, returnCode: ReturnCode.CONGESTION }),
  );
}

/** The filter a SUBSCRIBE/UNSUBSCRIBE names, or undefined if it names nothing valid. */
function filterOf(ctx: SnContext, s: SnSession, p: Subscribe | Unsubscribe): string | undefined {
  const filter = namedFilter(ctx, s, p);
  // The broker reads "$share/{group}/{filter}" as a shared subscription, as it does for MQTT
  // clients: one without a group or a filter ("$share/g") is refused like theirs, not acknowledged.
  return filter !== undefined && typeof parseSharedFilter(filter) !== 'string' ? filter : undefined;
}

function namedFilter(ctx: SnContext, s: SnSession, p: Subscribe | Unsubscribe): string | undefined {
  if (p.topicIdType === 0) return p.topicName !== undefined && validateTopicFilter(p.topicName).ok ? p.topicName : undefined;
  if (p.topicIdType === 1) return ctx.predefined.nameOf(s.clientId, p.topicId!);
  // A short name is a filter of two octets: "/#" is one, "a#" or a NUL is not.
  const name = shortName(p.topicId!);
  return name !== undefined && validateTopicFilter(name).ok ? name : undefined;
}

export function onSubscribe(ctx: SnContext, s: SnSession, p: Subscribe): void {
  const refuse = (returnCode: number) => ctx.reply(s, { type: MsgType.SUBACK, qos: 0, topicId: 0, msgId: p.msgId, returnCode });
  if (p.qos === -1) return refuse(ReturnCode.NOT_SUPPORTED);
  const filter = filterOf(ctx, s, p);
  if (filter === undefined) {
    ctx.reject('invalid-topic', s.peer, 'SUBSCRIBE to an invalid or unknown topic');
    return refuse(ReturnCode.INVALID_TOPIC_ID);
  }
  if (tooDeep(ctx, filter, s.peer, 'SUBSCRIBE to')) return refuse(ReturnCode.INVALID_TOPIC_ID);
  const access = ctx.authorizer.grantsFor(s.origin).readAccess(filter);
  if (access === 'none') {
    ctx.reject('not-authorized', s.peer, `SUBSCRIBE to "${filter}" denied by the ACL`);
    return refuse(ReturnCode.NOT_SUPPORTED);
  }
  if (!s.subs?.has(filter) && (s.subs?.size ?? 0) >= ctx.config.max_topics_per_client) {
    // Subscriptions are bounded like topic ids: each one is a subscription on the bus.
    ctx.reject('topic-table-full', s.peer, `subscription limit (${ctx.config.max_topics_per_client})`);
    return refuse(ReturnCode.CONGESTION);
  }
  let topicId = 0; // wildcards and short names: "not relevant", 0x0000 (§5.4.16); a shared
  // subscription's messages come on the topics of its inner filter, registered as they come.
  if (p.topicIdType === 1) topicId = p.topicId!;
  else if (p.topicIdType === 0 && !hasWildcard(filter) && parseSharedFilter(filter) === null) {
    const id = s.topics.assign(filter, true, s.topicInUse);
    if (id === undefined) {
      ctx.reject('topic-table-full', s.peer, `topic table full (${ctx.config.max_topics_per_client})`);
      return refuse(ReturnCode.CONGESTION);
    }
    topicId = id;
  }
  const ack = () => ctx.reply(s, { type: MsgType.SUBACK, qos: p.qos, topicId, msgId: p.msgId, returnCode: ReturnCode.ACCEPTED });
  // A retransmission (DUP, §5.3.4) of a SUBSCRIBE we already applied only lost its SUBACK:
  // subscribing again would send the retained messages twice.
  if (p.dup && s.subs?.has(filter)) return ack();
  // Stored with the subscription before the SUBACK; the bus subscription follows the SUBACK
  // so that retained messages come after it.
  const qos = p.qos;
  (s.subQos ??= new Map()).set(filter, qos);
  ctx.afterStored(
    s,
    () => {
      // A CleanSession=1 CONNECT or the session's end while the commit was under way
      // dropped this subscription: nothing to acknowledge or subscribe any more.
      if (s.subQos?.get(filter) !== qos || ctx.byId.get(s.clientId) !== s) return;
      ack();
      ctx.subscribe(s, filter, qos, access === 'some');
    },
    () => {
      if (!s.subs?.has(filter)) s.subQos?.delete(filter);
      refuse(ReturnCode.CONGESTION);
    },
  );
}

export function onUnsubscribe(ctx: SnContext, s: SnSession, p: Unsubscribe): void {
  const filter = filterOf(ctx, s, p);
  if (filter !== undefined) {
    s.subs?.get(filter)?.unsubscribe();
    s.subs?.delete(filter);
    s.subQos?.delete(filter);
  }
  // UNSUBACK in every case (after the change is stored, or failed to be): the client only
  // wants to know it is not subscribed (§6.9).
  ctx.afterStored(s, () => ctx.reply(s, { type: MsgType.UNSUBACK, msgId: p.msgId }));
}
