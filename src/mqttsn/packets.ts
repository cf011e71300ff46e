/**
 * MQTT-SN v1.2 (2013-11-14) messages as plain objects. The codec (decode.ts, encode.ts)
 * turns them into datagrams and back; nothing here does I/O.
 */

/** MsgType values, MQTT-SN v1.2 §5.2.2. */
export const MsgType = {
  ADVERTISE: 0x00,
  SEARCHGW: 0x01,
  GWINFO: 0x02,
  CONNECT: 0x04,
  CONNACK: 0x05,
  WILLTOPICREQ: 0x06,
  WILLTOPIC: 0x07,
  WILLMSGREQ: 0x08,
  WILLMSG: 0x09,
  REGISTER: 0x0a,
  REGACK: 0x0b,
  PUBLISH: 0x0c,
  PUBACK: 0x0d,
  PUBCOMP: 0x0e,
  PUBREC: 0x0f,
  PUBREL: 0x10,
  SUBSCRIBE: 0x12,
  SUBACK: 0x13,
  UNSUBSCRIBE: 0x14,
  UNSUBACK: 0x15,
  PINGREQ: 0x16,
  PINGRESP: 0x17,
  DISCONNECT: 0x18,
  WILLTOPICUPD: 0x1a,
  WILLTOPICRESP: 0x1b,
  WILLMSGUPD: 0x1c,
  WILLMSGRESP: 0x1d,
  /** Forwarder encapsulation, §5.5. */
  ENCAPSULATED: 0xfe,
} as const;

export type MsgTypeValue = (typeof MsgType)[keyof typeof MsgType];

/** ReturnCode values, §5.3.10. */
export const ReturnCode = {
  ACCEPTED: 0x00,
  CONGESTION: 0x01,
  INVALID_TOPIC_ID: 0x02,
  NOT_SUPPORTED: 0x03,
} as const;

/** TopicIdType (Flags bits 1-0), §5.3.4. 0b11 is reserved. */
export const TopicIdType = {
  NORMAL: 0,
  PREDEFINED: 1,
  SHORT: 2,
} as const;
export type TopicIdTypeValue = 0 | 1 | 2;

/**
 * What a ClientId or TopicName that is not UTF-8 decodes to (decode.ts): a lone surrogate,
 * which no well-formed string holds, so topic checks refuse it as ill-formed UTF-8
 * ([MQTT-1.5.4-1], core/topic.ts) and no client id or topic can equal it.
 */
export const NOT_UTF8 = '\udcff';

/** ProtocolId of MQTT-SN v1.2, §5.3.8. */
export const PROTOCOL_ID = 0x01;

/** QoS as the Flags carry it (§5.3.4): 0b11 is QoS -1, "publish without connection" (§6.8). */
export type SnQoS = -1 | 0 | 1 | 2;

export interface Advertise { type: 0x00; gwId: number; duration: number }
export interface SearchGw { type: 0x01; radius: number }
/** GwAdd is only present when a client answers for a gateway (§5.4.3). */
export interface GwInfo { type: 0x02; gwId: number; gwAdd: Buffer }
export interface Connect {
  type: 0x04;
  will: boolean;
  cleanSession: boolean;
  protocolId: number;
  /** Keep Alive in seconds (Duration, §5.3.3). */
  duration: number;
  clientId: string;
}
export interface ReturnOnly<T extends number> { type: T; returnCode: number }
export interface Empty<T extends number> { type: T }
/** An empty WILLTOPIC/WILLTOPICUPD (no Flags, no topic: 2 octets) deletes the Will (§5.4.7, §5.4.22). */
export interface WillTopic<T extends 0x07 | 0x1a> { type: T; qos: SnQoS; retain: boolean; topic: string | undefined }
export interface WillMsg<T extends 0x09 | 0x1c> { type: T; payload: Buffer }
export interface Register { type: 0x0a; topicId: number; msgId: number; topicName: string }
export interface RegAck { type: 0x0b; topicId: number; msgId: number; returnCode: number }
export interface Publish {
  type: 0x0c;
  dup: boolean;
  qos: SnQoS;
  retain: boolean;
  topicIdType: TopicIdTypeValue;
  /** The two TopicId octets as received (a short name's two characters too), §5.3.11. */
  topicId: number;
  msgId: number;
  payload: Buffer;
}
export interface PubAck { type: 0x0d; topicId: number; msgId: number; returnCode: number }
export interface MsgIdOnly<T extends 0x0e | 0x0f | 0x10 | 0x15> { type: T; msgId: number }
/** SUBSCRIBE/UNSUBSCRIBE carry a name (TopicIdType 0) or two octets (predefined id or short name), §5.4.15. */
export interface Subscribe {
  type: 0x12;
  dup: boolean;
  qos: SnQoS;
  msgId: number;
  topicIdType: TopicIdTypeValue;
  topicName: string | undefined;
  topicId: number | undefined;
}
export interface SubAck { type: 0x13; qos: SnQoS; topicId: number; msgId: number; returnCode: number }
export interface Unsubscribe {
  type: 0x14;
  msgId: number;
  topicIdType: TopicIdTypeValue;
  topicName: string | undefined;
  topicId: number | undefined;
}
/** A sleeping client names itself when it wakes up (§5.4.19, §6.14). */
export interface PingReq { type: 0x16; clientId: string | undefined }
/** A Duration asks to sleep (§5.4.21, §6.14). */
export interface Disconnect { type: 0x18; duration: number | undefined }

export type Packet =
  | Advertise
  | SearchGw
  | GwInfo
  | Connect
  | ReturnOnly<0x05>
  | Empty<0x06>
  | WillTopic<0x07>
  | Empty<0x08>
  | WillMsg<0x09>
  | Register
  | RegAck
  | Publish
  | PubAck
  | MsgIdOnly<0x0e>
  | MsgIdOnly<0x0f>
  | MsgIdOnly<0x10>
  | Subscribe
  | SubAck
  | Unsubscribe
  | MsgIdOnly<0x15>
  | PingReq
  | Empty<0x17>
  | Disconnect
  | WillTopic<0x1a>
  | ReturnOnly<0x1b>
  | WillMsg<0x1c>
  | ReturnOnly<0x1d>;

/** Forwarder encapsulation header (§5.5): the reply goes back through the same forwarder and node. */
export interface Encapsulation {
  /** Ctrl octet; bits 1-0 are the broadcast radius (meaningful gateway → forwarder). */
  ctrl: number;
  wirelessNodeId: Buffer;
}

/** Why a datagram was dropped: counted per reason and logged rate-limited. */
export type DecodeError =
  | 'truncated'
  | 'bad-length'
  | 'unknown-type'
  | 'malformed'
  | 'nested-encapsulation';

export type Decoded =
  | { ok: true; packet: Packet; encapsulation: Encapsulation | undefined }
  | { ok: false; reason: DecodeError; type: number | undefined };

/**
 * Two octets of a short topic name (§3, §5.3.11) as the topic string they spell, read as
 * UTF-8 like every MQTT topic: two ASCII characters or one two-octet character. Undefined
 * for octets that are not well-formed UTF-8 (an MQTT topic cannot carry them, [MQTT-1.5.4-1]).
 * Whether the string is a valid topic name or filter is the caller's check.
 */
export function shortName(topicId: number): string | undefined {
  const hi = topicId >> 8;
  const lo = topicId & 0xff;
  if (hi < 0x80 && lo < 0x80) return String.fromCharCode(hi, lo);
  // A lead octet of a two-octet sequence (0xC0/0xC1 would be overlong) and a continuation octet.
  if (hi >= 0xc2 && hi <= 0xdf && lo >= 0x80 && lo <= 0xbf) return String.fromCharCode(((hi & 0x1f) << 6) | (lo & 0x3f));
  return undefined;
}

/** The TopicId octets for a topic name of exactly two UTF-8 octets (a short name), or undefined. */
export function shortTopicId(name: string): number | undefined {
  if (name.length > 2) return undefined;
  const b = Buffer.from(name, 'utf8');
  return b.length === 2 ? b.readUInt16BE(0) : undefined;
}
