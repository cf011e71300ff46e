/**
 * Datagram → MQTT-SN v1.2 message. Never throws: wire garbage is a result with a reason,
 * which the gateway counts and drops.
 *
 * Header (§5.2.1): Length is one octet (2..255), or 0x01 followed by two octets (any
 * value ≥ 4: the three-octet form is accepted at every size, §5.2.1 only says it must be
 * used above 255). Length counts the whole message and must equal the datagram size:
 * UDP keeps message boundaries, so a mismatch means a broken sender.
 */
import {
  MsgType,
  NOT_UTF8,
  type Decoded,
  type DecodeError,
  type Encapsulation,
  type Packet,
  type SnQoS,
  type TopicIdTypeValue,
} from './packets.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

class Bad {
  constructor(readonly reason: DecodeError) {}
}

/** Flags octet §5.3.4: DUP(7) QoS(6-5) Retain(4) Will(3) CleanSession(2) TopicIdType(1-0). */
function qosOf(flags: number): SnQoS {
  const q = (flags >> 5) & 0x03;
  return q === 3 ? -1 : (q as 0 | 1 | 2);
}

function topicIdTypeOf(flags: number): TopicIdTypeValue {
  const t = flags & 0x03;
  if (t === 3) throw new Bad('malformed'); // reserved, §5.3.4
  return t as TopicIdTypeValue;
}

/**
 * A ClientId or TopicName (UTF-8 strings, §5.3.1, §5.3.12). Octets that are not UTF-8 do not
 * make the message undecodable: it becomes NOT_UTF8, which every check refuses, so the
 * sensor hears REGACK/SUBACK 0x02, CONNACK/WILLTOPICRESP 0x03 (silence made it retransmit
 * and then take the gateway for lost, §6.13).
 */
function text(buf: Buffer, start: number, end: number): string {
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    return NOT_UTF8;
  }
}

/** Body length must be exactly n octets (fixed-size messages). */
function exactly(bodyLen: number, n: number): void {
  if (bodyLen !== n) throw new Bad(bodyLen < n ? 'truncated' : 'bad-length');
}

function atLeast(bodyLen: number, n: number): void {
  if (bodyLen < n) throw new Bad('truncated');
}

/** Decodes one MQTT-SN message (header included) occupying all of `buf`. */
function decodeMessage(buf: Buffer): Packet {
  if (buf.length < 2) throw new Bad('truncated');
  let length: number;
  let h: number;
  if (buf[0] === 0x01) {
    if (buf.length < 4) throw new Bad('truncated');
    length = buf.readUInt16BE(1);
    h = 3;
    if (length < 4) throw new Bad('bad-length');
  } else {
    length = buf[0]!;
    h = 1;
    if (length < 2) throw new Bad('bad-length');
  }
  if (length > buf.length) throw new Bad('truncated');
  if (length < buf.length) throw new Bad('bad-length');
  const type = buf[h]!;
  const b = h + 1; // first body octet
  const n = length - b; // body length
  switch (type) {
    case MsgType.ADVERTISE:
      exactly(n, 3);
      return { type, gwId: buf[b]!, duration: buf.readUInt16BE(b + 1) };
    case MsgType.SEARCHGW:
      // An MQTT-SN 2.0 SEARCHGW or any other body here is not v1.2: wrong length.
      exactly(n, 1);
      return { type, radius: buf[b]! };
    case MsgType.GWINFO:
      atLeast(n, 1);
      return { type, gwId: buf[b]!, gwAdd: Buffer.from(buf.subarray(b + 1, length)) };
    case MsgType.CONNECT: {
      atLeast(n, 4);
      const flags = buf[b]!;
      return {
        type,
        will: (flags & 0x08) !== 0,
        cleanSession: (flags & 0x04) !== 0,
        protocolId: buf[b + 1]!,
        duration: buf.readUInt16BE(b + 2),
        clientId: text(buf, b + 4, length),
      };
    }
    case MsgType.CONNACK:
    case MsgType.WILLTOPICRESP:
    case MsgType.WILLMSGRESP:
      exactly(n, 1);
      return { type, returnCode: buf[b]! };
    case MsgType.WILLTOPICREQ:
    case MsgType.WILLMSGREQ:
    case MsgType.PINGRESP:
      exactly(n, 0);
      return { type };
    case MsgType.WILLTOPIC:
    case MsgType.WILLTOPICUPD: {
      // Exactly 2 octets: the empty form, which deletes the Will (§5.4.7, §5.4.22).
      if (n === 0) return { type, qos: 0, retain: false, topic: undefined };
      const flags = buf[b]!;
      return { type, qos: qosOf(flags), retain: (flags & 0x10) !== 0, topic: text(buf, b + 1, length) };
    }
    case MsgType.WILLMSG:
    case MsgType.WILLMSGUPD:
      return { type, payload: Buffer.from(buf.subarray(b, length)) };
    case MsgType.REGISTER:
      atLeast(n, 4);
      return { type, topicId: buf.readUInt16BE(b), msgId: buf.readUInt16BE(b + 2), topicName: text(buf, b + 4, length) };
    case MsgType.REGACK:
    case MsgType.PUBACK:
      exactly(n, 5);
      return { type, topicId: buf.readUInt16BE(b), msgId: buf.readUInt16BE(b + 2), returnCode: buf[b + 4]! };
    case MsgType.PUBLISH: {
      atLeast(n, 5);
      const flags = buf[b]!;
      return {
        type,
        dup: (flags & 0x80) !== 0,
        qos: qosOf(flags),
        retain: (flags & 0x10) !== 0,
        topicIdType: topicIdTypeOf(flags),
        topicId: buf.readUInt16BE(b + 1),
        msgId: buf.readUInt16BE(b + 3),
        // A copy: the datagram buffer is not ours to keep (the message may be buffered for hours).
        payload: Buffer.from(buf.subarray(b + 5, length)),
      };
    }
    case MsgType.PUBCOMP:
    case MsgType.PUBREC:
    case MsgType.PUBREL:
    case MsgType.UNSUBACK:
      exactly(n, 2);
      return { type, msgId: buf.readUInt16BE(b) };
    case MsgType.SUBSCRIBE:
    case MsgType.UNSUBSCRIBE: {
      atLeast(n, 3);
      const flags = buf[b]!;
      const topicIdType = topicIdTypeOf(flags);
      const msgId = buf.readUInt16BE(b + 1);
      let topicName: string | undefined;
      let topicId: number | undefined;
      if (topicIdType === 0) {
        atLeast(n, 4); // a topic name is not empty (§5.3.12)
        topicName = text(buf, b + 3, length);
      } else {
        exactly(n, 5); // predefined id or short name: two octets (§5.4.15)
        topicId = buf.readUInt16BE(b + 3);
      }
      if (type === MsgType.UNSUBSCRIBE) return { type, msgId, topicIdType, topicName, topicId };
      return { type, dup: (flags & 0x80) !== 0, qos: qosOf(flags), msgId, topicIdType, topicName, topicId };
    }
    case MsgType.SUBACK: {
      exactly(n, 6);
      return { type, qos: qosOf(buf[b]!), topicId: buf.readUInt16BE(b + 1), msgId: buf.readUInt16BE(b + 3), returnCode: buf[b + 5]! };
    }
    case MsgType.PINGREQ:
      return { type, clientId: n === 0 ? undefined : text(buf, b, length) };
    case MsgType.DISCONNECT:
      if (n === 0) return { type, duration: undefined };
      exactly(n, 2);
      return { type, duration: buf.readUInt16BE(b) };
    case MsgType.ENCAPSULATED:
      throw new Bad('nested-encapsulation');
    default:
      throw new Bad('unknown-type');
  }
}

function typeOf(buf: Buffer): number | undefined {
  const h = buf[0] === 0x01 ? 3 : 1;
  return buf.length > h ? buf[h] : undefined;
}

/**
 * One datagram. An encapsulated message (§5.5: Length, 0xFE, Ctrl, Wireless Node Id,
 * then an MQTT-SN message) is unwrapped; Length there counts only the encapsulation header.
 */
export function decode(buf: Buffer): Decoded {
  let inner = buf;
  let encapsulation: Encapsulation | undefined;
  if (buf.length >= 2 && buf[1] === MsgType.ENCAPSULATED && buf[0] !== 0x01) {
    const hl = buf[0]!;
    if (hl < 3) return { ok: false, reason: 'bad-length', type: MsgType.ENCAPSULATED };
    if (hl > buf.length) return { ok: false, reason: 'truncated', type: MsgType.ENCAPSULATED };
    encapsulation = { ctrl: buf[2]!, wirelessNodeId: Buffer.from(buf.subarray(3, hl)) };
    inner = buf.subarray(hl);
  }
  try {
    return { ok: true, packet: decodeMessage(inner), encapsulation };
  } catch (err) {
    if (err instanceof Bad) return { ok: false, reason: err.reason, type: typeOf(inner) };
    // Only a bug reaches this line; it must still not cross the transport boundary.
    return { ok: false, reason: 'malformed', type: typeOf(inner) };
  }
}
