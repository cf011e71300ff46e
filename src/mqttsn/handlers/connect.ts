/**
 * CONNECT and the Will (MQTT-SN v1.2 §6.2 connection setup, §6.3 clean session, §6.4
 * Will update):
 *
 *   CONNECT(Will=0) ─────────────────────────────────────────────▶ CONNACK
 *   CONNECT(Will=1) ─▶ WILLTOPICREQ ◀─ WILLTOPIC ─▶ WILLMSGREQ ◀─ WILLMSG ─▶ CONNACK
 *                                  ◀─ empty WILLTOPIC (no Will) ─▶ CONNACK
 *
 * A CONNECT with the Will flag takes effect when its Will exchange completes, all at once
 * (CleanSession, Keep Alive, the new Will, the state 'connect'); until then the client stays
 * as it was: an active one keeps its subscriptions, its Will and its Keep Alive, a new one is
 * not connected. v1.2 says no more than that the client is connected by the CONNACK (§6.2); a
 * CONNECT whose prompts go unanswered for T_retry × (N_retry + 1) (§6.13) is dropped and
 * changes nothing, so an active client that went silent meanwhile is lost on its old Keep Alive
 * with its old Will, as if the CONNECT had been lost on the way. (Before, the CONNECT deleted
 * the Will and, with CleanSession, the subscriptions at once: an unanswered one left an active
 * client connected without its Will, and a new one unconnected.) A Will topic refused with
 * CONNACK 0x03 is an answer: the client is told it is not connected, and it is not (§5.4.2).
 */
import { validateTopicName } from '../../core/topic.js';
import type { SnContext } from '../context.js';
import { MsgType, NOT_UTF8, PROTOCOL_ID, ReturnCode, type Connect, type WillMsg, type WillTopic } from '../packets.js';
import type { Peer, SnSession } from '../session.js';
import { isGatewayTopic } from '../sys-topics.js';
import { tooDeep } from '../topic-limit.js';

/** ClientId is 1-23 characters in §5.3.1; longer ones are accepted as MQTT 3.1.1 servers may, up to a sane bound. */
const MAX_CLIENT_ID = 255;

export function onConnect(ctx: SnContext, peer: Peer, p: Connect): void {
  if (p.protocolId !== PROTOCOL_ID) {
    // Not v1.2 (MQTT-SN 2.0 uses 0x02): "rejected: not supported" (§5.3.10).
    ctx.reject('unexpected', peer, `CONNECT with ProtocolId 0x${p.protocolId.toString(16)}`);
    return ctx.sendTo(peer, { type: MsgType.CONNACK, returnCode: ReturnCode.NOT_SUPPORTED });
  }
  if (p.clientId.length === 0 || p.clientId === NOT_UTF8 || Buffer.byteLength(p.clientId) > MAX_CLIENT_ID || p.clientId.includes('\u0000')) {
    return ctx.sendTo(peer, { type: MsgType.CONNACK, returnCode: ReturnCode.NOT_SUPPORTED });
  }
  let s = ctx.byId.get(p.clientId);
  if (s === undefined) {
    s = ctx.newSession(p.clientId);
    if (s === undefined) return ctx.sendTo(peer, { type: MsgType.CONNACK, returnCode: ReturnCode.CONGESTION });
  }
  ctx.metrics.connects++;
  ctx.bind(s, peer);
  s.lastSeen = ctx.clock.now();
  const connect = { cleanSession: p.cleanSession, keepaliveMs: p.duration * 1000 };
  if (p.will) {
    s.connecting = { stage: 'topic', deadline: ctx.clock.now() + ctx.retryMs * (ctx.maxRetries + 1), ...connect };
    ctx.armTimer(s);
    ctx.reply(s, { type: MsgType.WILLTOPICREQ });
    return;
  }
  // Will=0 with CleanSession=0 keeps the Will the session has, with CleanSession=1 deletes it (§6.3).
  accept(ctx, s, connect, p.cleanSession ? undefined : s.will);
}

/** The CONNECT takes effect: its CleanSession, Keep Alive and Will (§6.3), then the CONNACK. */
function accept(ctx: SnContext, s: SnSession, connect: { cleanSession: boolean; keepaliveMs: number }, will: SnSession['will']): void {
  s.connecting = undefined;
  // §6.3: CleanSession also covers the Will data.
  //   clean, Will=1: subscriptions deleted, Will prompted anew   clean, Will=0: both deleted
  //   keep,  Will=1: subscriptions kept, Will prompted anew      keep,  Will=0: both kept
  if (connect.cleanSession) {
    const lost = s.reset();
    if (lost > 0) ctx.metrics.drop('session-ended', lost);
  }
  s.will = will;
  s.cleanSession = connect.cleanSession;
  s.keepaliveMs = connect.keepaliveMs;
  // Connected: a Will is owed from now on until a DISCONNECT (stored with the session below).
  s.ended = false;
  s.willDeadline = undefined;
  // Stored (CleanSession=0: its Will may be new) or no longer stored (CleanSession=1) before
  // the CONNACK; a sensor whose session did not change is answered at once.
  ctx.afterStored(
    s,
    () => {
      ctx.reply(s, { type: MsgType.CONNACK, returnCode: ReturnCode.ACCEPTED });
      // After the CONNACK: buffered messages (CleanSession=false) follow it.
      ctx.apply(s, 'connect');
    },
    () => {
      // Refused: the client is not connected and must not be served as if it were.
      ctx.reply(s, { type: MsgType.CONNACK, returnCode: ReturnCode.CONGESTION });
      if (ctx.byId.get(s.clientId) === s) ctx.refuseConnect(s);
    },
  );
}

export function onWillTopic(ctx: SnContext, s: SnSession, p: WillTopic<0x07>): void {
  if (s.connecting === undefined) return ctx.reject('unexpected', s.peer, 'WILLTOPIC without CONNECT');
  if (p.topic === undefined || p.topic === '') {
    // Empty WILLTOPIC: the client has no Will (§5.4.7); no WILLMSGREQ follows.
    return accept(ctx, s, s.connecting, undefined);
  }
  if (!mayWriteWill(ctx, s, p.topic)) {
    ctx.reply(s, { type: MsgType.CONNACK, returnCode: ReturnCode.NOT_SUPPORTED });
    return ctx.refuseConnect(s);
  }
  s.connecting.topic = { topic: p.topic, qos: p.qos, retain: p.retain };
  s.connecting.stage = 'msg';
  ctx.reply(s, { type: MsgType.WILLMSGREQ });
}

export function onWillMsg(ctx: SnContext, s: SnSession, p: WillMsg<0x09>): void {
  const c = s.connecting;
  if (c?.stage !== 'msg' || c.topic === undefined) {
    // A retransmitted WILLMSG after CONNACK: answer CONNACK again, the client missed it.
    if (c === undefined && s.state === 'active') return ctx.reply(s, { type: MsgType.CONNACK, returnCode: ReturnCode.ACCEPTED });
    return ctx.reject('unexpected', s.peer, 'WILLMSG out of order');
  }
  accept(ctx, s, c, { ...c.topic, payload: p.payload });
}

/**
 * A Will topic must be valid and, under an ACL, one the sensor may publish to, as MQTT
 * clients' Will topics are: otherwise going silent would publish where it may not write.
 */
function mayWriteWill(ctx: SnContext, s: SnSession, topic: string): boolean {
  if (!validateTopicName(topic).ok) {
    ctx.reject('invalid-topic', s.peer, 'invalid Will topic');
    return false;
  }
  if (tooDeep(ctx, topic, s.peer, 'Will topic')) return false;
  if (isGatewayTopic(topic)) {
    ctx.reject('not-authorized', s.peer, `Will topic "${topic}" refused: $SYS is reserved for the gateway`);
    return false;
  }
  if (!ctx.authorizer.grantsFor(s.origin).canWrite(topic)) {
    ctx.reject('not-authorized', s.peer, `Will topic "${topic}" denied by the ACL`);
    return false;
  }
  return true;
}

/** WILLTOPICUPD (§6.4): a new Will topic (the message stays), or empty to delete the Will. */
export function onWillTopicUpd(ctx: SnContext, s: SnSession, p: WillTopic<0x1a>): void {
  if (p.topic === undefined || p.topic === '') {
    s.will = undefined;
  } else if (!mayWriteWill(ctx, s, p.topic)) {
    return ctx.reply(s, { type: MsgType.WILLTOPICRESP, returnCode: ReturnCode.NOT_SUPPORTED });
  } else {
    s.will = { topic: p.topic, qos: p.qos, retain: p.retain, payload: s.will?.payload ?? Buffer.alloc(0) };
  }
  ctx.afterStored(
    s,
    () => ctx.reply(s, { type: MsgType.WILLTOPICRESP, returnCode: ReturnCode.ACCEPTED }),
    () => ctx.reply(s, { type: MsgType.WILLTOPICRESP, returnCode: ReturnCode.CONGESTION }),
  );
}

/** WILLMSGUPD (§6.4): a new Will message for the existing topic. */
export function onWillMsgUpd(ctx: SnContext, s: SnSession, p: WillMsg<0x1c>): void {
  if (s.will === undefined) s.will = { topic: undefined, qos: 0, retain: false, payload: p.payload };
  else s.will.payload = p.payload;
  ctx.afterStored(
    s,
    () => ctx.reply(s, { type: MsgType.WILLMSGRESP, returnCode: ReturnCode.ACCEPTED }),
    () => ctx.reply(s, { type: MsgType.WILLMSGRESP, returnCode: ReturnCode.CONGESTION }),
  );
}
