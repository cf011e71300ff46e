/**
 * One decoded message → its handler. Sessions are found by address; a message that
 * needs a session from an address without one gets DISCONNECT, so the client knows to
 * CONNECT again (a NAT rebinding, or a gateway restart).
 */
import type { SnContext } from './context.js';
import { onConnect, onWillMsg, onWillMsgUpd, onWillTopic, onWillTopicUpd } from './handlers/connect.js';
import { onSearchGw } from './handlers/discovery.js';
import { onPublish, onPublishMinusOne, onPubrel } from './handlers/publish.js';
import { onDisconnect, onPingreq } from './handlers/session.js';
import { onRegister, onSubscribe, onUnsubscribe } from './handlers/topics.js';
import { onPuback, onPubcomp, onPubrec, onRegack } from './outbound.js';
import { MsgType, type Packet } from './packets.js';
import type { Peer } from './session.js';
import type { DatagramTransport } from './transport.js';

export function dispatch(ctx: SnContext, transport: DatagramTransport, peer: Peer, p: Packet): void {
  // Any message from a client's address counts for its keepalive (§6.11), PINGREQ included.
  const s = ctx.byPeer.get(peer.key);
  if (s !== undefined) s.lastSeen = ctx.clock.now();
  switch (p.type) {
    case MsgType.SEARCHGW:
      return onSearchGw(ctx, transport, peer, p);
    case MsgType.CONNECT:
      return onConnect(ctx, peer, p);
    case MsgType.PINGREQ:
      return onPingreq(ctx, peer, p);
    case MsgType.DISCONNECT:
      return onDisconnect(ctx, peer, p);
    case MsgType.ADVERTISE:
    case MsgType.GWINFO:
      return; // another gateway, or a client answering a SEARCHGW: not for us
    case MsgType.CONNACK:
    case MsgType.WILLTOPICREQ:
    case MsgType.WILLMSGREQ:
    case MsgType.SUBACK:
    case MsgType.UNSUBACK:
    case MsgType.PINGRESP:
    case MsgType.WILLTOPICRESP:
    case MsgType.WILLMSGRESP:
      return ctx.reject('unexpected', peer, `message type 0x${p.type.toString(16)} only flows gateway → client`);
    case MsgType.PUBLISH:
      if (p.qos === -1) return onPublishMinusOne(ctx, peer, p);
      break;
  }
  if (s === undefined) {
    ctx.reject('unknown-peer', peer, `message type 0x${p.type.toString(16)} from an address without a session`);
    return ctx.sendTo(peer, { type: MsgType.DISCONNECT, duration: undefined });
  }
  switch (p.type) {
    case MsgType.WILLTOPIC:
      return onWillTopic(ctx, s, p);
    case MsgType.WILLMSG:
      return onWillMsg(ctx, s, p);
    case MsgType.WILLTOPICUPD:
      return onWillTopicUpd(ctx, s, p);
    case MsgType.WILLMSGUPD:
      return onWillMsgUpd(ctx, s, p);
    case MsgType.REGISTER:
      return onRegister(ctx, s, p);
    case MsgType.REGACK:
      return onRegack(ctx, s, p.msgId, p.returnCode);
    case MsgType.PUBLISH:
      return onPublish(ctx, s, p);
    case MsgType.PUBACK:
      return onPuback(ctx, s, p.msgId, p.returnCode, p.topicId);
    case MsgType.PUBREC:
      return onPubrec(ctx, s, p.msgId);
    case MsgType.PUBREL:
      return onPubrel(ctx, s, p);
    case MsgType.PUBCOMP:
      return onPubcomp(ctx, s, p.msgId);
    case MsgType.SUBSCRIBE:
      return onSubscribe(ctx, s, p);
    case MsgType.UNSUBSCRIBE:
      return onUnsubscribe(ctx, s, p);
  }
}
