/**
 * MQTT-SN v1.2 message → datagram. The Length field is one octet while the whole message
 * fits in 255 octets and 0x01 + two octets above that (§5.2.1).
 */
import { MsgType, type Encapsulation, type Packet, type SnQoS } from './packets.js';

/** QoS into Flags bits 6-5 (§5.3.4); -1 is 0b11. */
function qosBits(qos: SnQoS): number {
  return (qos === -1 ? 3 : qos) << 5;
}

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Octets after MsgType. */
function bodyLength(p: Packet): number {
  switch (p.type) {
    case MsgType.ADVERTISE:
      return 3;
    case MsgType.SEARCHGW:
    case MsgType.CONNACK:
    case MsgType.WILLTOPICRESP:
    case MsgType.WILLMSGRESP:
      return 1;
    case MsgType.GWINFO:
      return 1 + p.gwAdd.length;
    case MsgType.CONNECT:
      return 4 + utf8(p.clientId);
    case MsgType.WILLTOPICREQ:
    case MsgType.WILLMSGREQ:
    case MsgType.PINGRESP:
      return 0;
    case MsgType.WILLTOPIC:
    case MsgType.WILLTOPICUPD:
      return p.topic === undefined ? 0 : 1 + utf8(p.topic);
    case MsgType.WILLMSG:
    case MsgType.WILLMSGUPD:
      return p.payload.length;
    case MsgType.REGISTER:
      return 4 + utf8(p.topicName);
    case MsgType.REGACK:
    case MsgType.PUBACK:
      return 5;
    case MsgType.PUBLISH:
      return 5 + p.payload.length;
    case MsgType.PUBCOMP:
    case MsgType.PUBREC:
    case MsgType.PUBREL:
    case MsgType.UNSUBACK:
      return 2;
    case MsgType.SUBSCRIBE:
    case MsgType.UNSUBSCRIBE:
      return 3 + (p.topicIdType === 0 ? utf8(p.topicName ?? '') : 2);
    case MsgType.SUBACK:
      return 6;
    case MsgType.PINGREQ:
      return p.clientId === undefined ? 0 : utf8(p.clientId);
    case MsgType.DISCONNECT:
      return p.duration === undefined ? 0 : 2;
  }
}

/** Writes the body (everything after MsgType) at `o`; bodyLength(p) octets. */
function writeBody(b: Buffer, o: number, p: Packet): void {
  switch (p.type) {
    case MsgType.ADVERTISE:
      b[o] = p.gwId;
      b.writeUInt16BE(p.duration & 0xffff, o + 1);
      return;
    case MsgType.SEARCHGW:
      b[o] = p.radius;
      return;
    case MsgType.GWINFO:
      b[o] = p.gwId;
      p.gwAdd.copy(b, o + 1);
      return;
    case MsgType.CONNECT:
      b[o] = (p.will ? 0x08 : 0) | (p.cleanSession ? 0x04 : 0);
      b[o + 1] = p.protocolId;
      b.writeUInt16BE(p.duration & 0xffff, o + 2);
      b.write(p.clientId, o + 4, 'utf8');
      return;
    case MsgType.CONNACK:
    case MsgType.WILLTOPICRESP:
    case MsgType.WILLMSGRESP:
      b[o] = p.returnCode;
      return;
    case MsgType.WILLTOPICREQ:
    case MsgType.WILLMSGREQ:
    case MsgType.PINGRESP:
      return;
    case MsgType.WILLTOPIC:
    case MsgType.WILLTOPICUPD:
      if (p.topic === undefined) return;
      b[o] = qosBits(p.qos) | (p.retain ? 0x10 : 0);
      b.write(p.topic, o + 1, 'utf8');
      return;
    case MsgType.WILLMSG:
    case MsgType.WILLMSGUPD:
      p.payload.copy(b, o);
      return;
    case MsgType.REGISTER:
      b.writeUInt16BE(p.topicId & 0xffff, o);
      b.writeUInt16BE(p.msgId & 0xffff, o + 2);
      b.write(p.topicName, o + 4, 'utf8');
      return;
    case MsgType.REGACK:
    case MsgType.PUBACK:
      b.writeUInt16BE(p.topicId & 0xffff, o);
      b.writeUInt16BE(p.msgId & 0xffff, o + 2);
      b[o + 4] = p.returnCode;
      return;
    case MsgType.PUBLISH:
      b[o] = (p.dup ? 0x80 : 0) | qosBits(p.qos) | (p.retain ? 0x10 : 0) | p.topicIdType;
      b.writeUInt16BE(p.topicId & 0xffff, o + 1);
      b.writeUInt16BE(p.msgId & 0xffff, o + 3);
      p.payload.copy(b, o + 5);
      return;
    case MsgType.PUBCOMP:
    case MsgType.PUBREC:
    case MsgType.PUBREL:
    case MsgType.UNSUBACK:
      b.writeUInt16BE(p.msgId & 0xffff, o);
      return;
    case MsgType.SUBSCRIBE:
    case MsgType.UNSUBSCRIBE: {
      const dup = p.type === MsgType.SUBSCRIBE && p.dup ? 0x80 : 0;
      const qos = p.type === MsgType.SUBSCRIBE ? qosBits(p.qos) : 0;
      b[o] = dup | qos | p.topicIdType;
      b.writeUInt16BE(p.msgId & 0xffff, o + 1);
      if (p.topicIdType === 0) b.write(p.topicName ?? '', o + 3, 'utf8');
      else b.writeUInt16BE((p.topicId ?? 0) & 0xffff, o + 3);
      return;
    }
    case MsgType.SUBACK:
      b[o] = qosBits(p.qos);
      b.writeUInt16BE(p.topicId & 0xffff, o + 1);
      b.writeUInt16BE(p.msgId & 0xffff, o + 3);
      b[o + 5] = p.returnCode;
      return;
    case MsgType.PINGREQ:
      if (p.clientId !== undefined) b.write(p.clientId, o, 'utf8');
      return;
    case MsgType.DISCONNECT:
      if (p.duration !== undefined) b.writeUInt16BE(p.duration & 0xffff, o);
      return;
  }
}

/** Encodes a message in one allocation; the caller checks the result against its datagram size bound. */
export function encode(p: Packet): Buffer {
  const n = bodyLength(p);
  if (n + 2 <= 255) {
    const out = Buffer.allocUnsafe(n + 2);
    out[0] = n + 2;
    out[1] = p.type;
    writeBody(out, 2, p);
    return out;
  }
  const out = Buffer.allocUnsafe(n + 4);
  out[0] = 0x01;
  out.writeUInt16BE(n + 4, 1);
  out[3] = p.type;
  writeBody(out, 4, p);
  return out;
}

/** Wraps an encoded message for a forwarder (§5.5). */
export function encapsulate(message: Buffer, enc: Encapsulation): Buffer {
  const hl = 3 + enc.wirelessNodeId.length;
  const head = Buffer.allocUnsafe(3);
  head[0] = hl;
  head[1] = MsgType.ENCAPSULATED;
  head[2] = enc.ctrl & 0xff;
  return Buffer.concat([head, enc.wirelessNodeId, message]);
}
