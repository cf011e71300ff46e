/**
 * MQTT-SN v1.2 message → datagram. The Length field is one octet while the whole message
 * fits in 255 octets and 0x01 + two octets above that (§5.2.1).
 */
import { MsgType, type Encapsulation, type Packet, type SnQoS } from './packets.js';

/** QoS into Flags bits 6-5 (§5.3.4); -1 is 0b11. */
function qosBits(qos: SnQoS): number {
  return (qos === -1 ? 3 : qos) << 5;
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n & 0xffff, 0);
  return b;
}

/** The body (everything after MsgType) of a message. */
function body(p: Packet): Buffer {
  switch (p.type) {
    case MsgType.ADVERTISE:
      return Buffer.from([p.gwId, p.duration >> 8, p.duration & 0xff]);
    case MsgType.SEARCHGW:
      return Buffer.from([p.radius]);
    case MsgType.GWINFO:
      return Buffer.concat([Buffer.from([p.gwId]), p.gwAdd]);
    case MsgType.CONNECT:
      return Buffer.concat([
        Buffer.from([(p.will ? 0x08 : 0) | (p.cleanSession ? 0x04 : 0), p.protocolId, p.duration >> 8, p.duration & 0xff]),
        Buffer.from(p.clientId, 'utf8'),
      ]);
    case MsgType.CONNACK:
    case MsgType.WILLTOPICRESP:
    case MsgType.WILLMSGRESP:
      return Buffer.from([p.returnCode]);
    case MsgType.WILLTOPICREQ:
    case MsgType.WILLMSGREQ:
    case MsgType.PINGRESP:
      return Buffer.alloc(0);
    case MsgType.WILLTOPIC:
    case MsgType.WILLTOPICUPD:
      if (p.topic === undefined) return Buffer.alloc(0);
      return Buffer.concat([Buffer.from([qosBits(p.qos) | (p.retain ? 0x10 : 0)]), Buffer.from(p.topic, 'utf8')]);
    case MsgType.WILLMSG:
    case MsgType.WILLMSGUPD:
      return p.payload;
    case MsgType.REGISTER:
      return Buffer.concat([u16(p.topicId), u16(p.msgId), Buffer.from(p.topicName, 'utf8')]);
    case MsgType.REGACK:
    case MsgType.PUBACK:
      return Buffer.concat([u16(p.topicId), u16(p.msgId), Buffer.from([p.returnCode])]);
    case MsgType.PUBLISH: {
      const head = Buffer.allocUnsafe(5);
      head[0] = (p.dup ? 0x80 : 0) | qosBits(p.qos) | (p.retain ? 0x10 : 0) | p.topicIdType;
      head.writeUInt16BE(p.topicId & 0xffff, 1);
      head.writeUInt16BE(p.msgId & 0xffff, 3);
      return Buffer.concat([head, p.payload]);
    }
    case MsgType.PUBCOMP:
    case MsgType.PUBREC:
    case MsgType.PUBREL:
    case MsgType.UNSUBACK:
      return u16(p.msgId);
    case MsgType.SUBSCRIBE:
    case MsgType.UNSUBSCRIBE: {
      const dup = p.type === MsgType.SUBSCRIBE && p.dup ? 0x80 : 0;
      const qos = p.type === MsgType.SUBSCRIBE ? qosBits(p.qos) : 0;
      const topic = p.topicIdType === 0 ? Buffer.from(p.topicName ?? '', 'utf8') : u16(p.topicId ?? 0);
      return Buffer.concat([Buffer.from([dup | qos | p.topicIdType]), u16(p.msgId), topic]);
    }
    case MsgType.SUBACK:
      return Buffer.concat([Buffer.from([qosBits(p.qos)]), u16(p.topicId), u16(p.msgId), Buffer.from([p.returnCode])]);
    case MsgType.PINGREQ:
      return p.clientId === undefined ? Buffer.alloc(0) : Buffer.from(p.clientId, 'utf8');
    case MsgType.DISCONNECT:
      return p.duration === undefined ? Buffer.alloc(0) : u16(p.duration);
  }
}

/** Encodes a message; the caller checks the result against its datagram size bound. */
export function encode(p: Packet): Buffer {
  const b = body(p);
  const total = b.length + 2;
  if (total <= 255) {
    const out = Buffer.allocUnsafe(total);
    out[0] = total;
    out[1] = p.type;
    b.copy(out, 2);
    return out;
  }
  const out = Buffer.allocUnsafe(b.length + 4);
  out[0] = 0x01;
  out.writeUInt16BE(b.length + 4, 1);
  out[3] = p.type;
  b.copy(out, 4);
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
