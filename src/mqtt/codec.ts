/**
 * The only module that imports mqtt-packet, shared by the broker (server side) and the
 * bridge's upstream client. It frames the byte stream into whole
 * packets (bounded by the maximum packet size before anything is buffered beyond it),
 * decodes them, and encodes outgoing packets.
 *
 *   socket bytes → Framer (fixed header + remaining length, size check)
 *               → mqtt-packet parser (one whole packet at a time) → Packet
 */
import mqttPacket from 'mqtt-packet';
import type { Packet, IPublishPacket } from 'mqtt-packet';
import { bytesAfterConnect, mismatchedProtocol } from './connect-scan.js';
import { connectFlagOutOfRange, repeatedProperty } from './property-scan.js';
import { propertiesLength, varIntSize, writeProperties, writeVarInt } from './publish-properties.js';
import { keepWillWireOrder, keepWireOrder } from './user-property-order.js';

export type {
  Packet,
  IConnectPacket,
  IConnackPacket,
  IPublishPacket,
  IPubackPacket,
  IPubrecPacket,
  IPubrelPacket,
  IPubcompPacket,
  ISubscribePacket,
  ISubackPacket,
  IUnsubscribePacket,
  IUnsubackPacket,
  IDisconnectPacket,
  ISubscription,
  UserProperties,
} from 'mqtt-packet';

export type ProtocolVersion = 3 | 4 | 5;

export type DecodeError =
  | { kind: 'malformed'; detail: string; firstByte: number; raw: Buffer | undefined }
  | { kind: 'too-large'; detail: string; size: number }
  /** Well-formed, but against a rule of the protocol (a property given twice). */
  | { kind: 'protocol-error'; detail: string };

export interface DecoderSink {
  onPacket(packet: Packet, raw: Buffer): void;
  onError(err: DecodeError): void;
}

/**
 * One mqtt-packet parser serves every connection: the Decoder hands it exactly one
 * whole packet at a time, synchronously, so no per-connection parser state (an
 * EventEmitter plus a BufferList stream, about 1.5 KiB each) has to live between reads.
 */
const shared: { parser: ReturnType<typeof mqttPacket.parser> | undefined; packet: Packet | undefined; error: Error | undefined } = {
  parser: undefined,
  packet: undefined,
  error: undefined,
};

function sharedParser(): ReturnType<typeof mqttPacket.parser> {
  if (shared.parser === undefined) {
    const parser = mqttPacket.parser();
    parser.on('packet', (p: Packet) => {
      shared.packet = p;
    });
    parser.on('error', (err: Error) => {
      shared.error = err;
    });
    shared.parser = parser;
  }
  return shared.parser;
}

// mqtt-packet pre-builds 65,536 two-byte buffers (6 MiB of heap) for packet ids unless
// told not to; our hot path encodes PUBLISH itself, so the cache buys nothing.
mqttPacket.writeToStream.cacheNumbers = false;

const V4_SETTINGS = Object.freeze({ protocolVersion: 4 });
const V5_SETTINGS = Object.freeze({ protocolVersion: 5 });
const V3_SETTINGS = Object.freeze({ protocolVersion: 3 });

/** Decodes a TCP byte stream into packets. Never throws on wire garbage. */
export class Decoder {
  private chunks: Buffer[] | undefined;
  private buffered = 0;
  /** Length of the frame being assembled from several chunks, once its header is known. */
  private needed = 0;
  private version: ProtocolVersion = 4;
  private failed = false;

  constructor(
    private readonly maxPacketSize: number,
    private readonly sink: DecoderSink,
  ) {}

  /**
   * The protocol version of the stream. A server learns it from CONNECT (done here
   * automatically); a client (the bridge) sets it before reading CONNACK.
   */
  setProtocolVersion(v: ProtocolVersion): void {
    this.version = v;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    let buf: Buffer;
    if (this.chunks === undefined) {
      buf = chunk;
    } else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      // A large packet arriving in many reads is joined once, when it is complete.
      if (this.needed > 0 && this.buffered < this.needed) return;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = undefined;
      this.buffered = 0;
      this.needed = 0;
    }
    let off = 0;
    while (off < buf.length && !this.failed) {
      const frame = readFrameLength(buf, off);
      if (frame === undefined) break; // header incomplete
      if (frame < 0) {
        this.fail({ kind: 'malformed', detail: 'malformed remaining length', firstByte: buf[off]!, raw: undefined });
        return;
      }
      if (frame > this.maxPacketSize) {
        // Over our Maximum Packet Size: MQTT 5 reason 0x95 (§3.2.2.3.6); nothing more is read.
        this.fail({ kind: 'too-large', detail: `packet of ${frame} bytes exceeds ${this.maxPacketSize}`, size: frame });
        return;
      }
      if (off + frame > buf.length) {
        this.needed = frame;
        break; // body incomplete
      }
      const raw = buf.subarray(off, off + frame);
      off += frame;
      this.decodeOne(raw);
    }
    if (off < buf.length && !this.failed) {
      const rest = buf.subarray(off);
      // Copy a small tail so a 64 KiB read buffer is not pinned by a few leftover bytes.
      this.chunks = [rest.length < 4096 ? Buffer.from(rest) : rest];
      this.buffered = rest.length;
    }
  }

  private decodeOne(raw: Buffer): void {
    const type = raw[0]! >> 4;
    const fast = type === 3 ? decodePublish(raw, this.version) : type >= 4 && type <= 7 ? decodeAck(raw) : undefined;
    if (fast !== undefined) {
      this.sink.onPacket(fast, raw);
      return;
    }
    if (raw.length === 2 && raw[0] === 0xf0 && this.version === 5) {
      // AUTH of Remaining Length 0: Success, no properties (§3.15.2.1). mqtt-packet refuses it as
      // malformed; the broker's verdict (no method was agreed: a Protocol Error) must stand.
      this.sink.onPacket({ cmd: 'auth', reasonCode: 0 } as Packet, raw);
      return;
    }
    const parser = sharedParser();
    (parser as unknown as { settings: object }).settings = this.version === 5 ? V5_SETTINGS : this.version === 3 ? V3_SETTINGS : V4_SETTINGS;
    shared.packet = undefined;
    shared.error = undefined;
    const refusal = this.version === 5 && (type === 4 || type === 5) ? unlistedRefusal(raw) : undefined;
    parser.parse(refusal === undefined ? raw : refusal.input);
    if (refusal !== undefined && shared.packet !== undefined) (shared.packet as { reasonCode?: number }).reasonCode = refusal.code;
    const packet = shared.packet as Packet | undefined;
    const error = shared.error as Error | undefined;
    shared.packet = undefined;
    shared.error = undefined;
    if (error !== undefined || packet === undefined) {
      // After an error mqtt-packet keeps a stale read position (and a packet that neither
      // parsed nor failed leaves it mid-packet): the next packet gets a fresh parser.
      shared.parser = undefined;
      this.fail({ kind: 'malformed', detail: error?.message ?? 'incomplete packet', firstByte: raw[0]!, raw });
      return;
    }
    if (missingPacketId(packet)) {
      // mqtt-packet reads a packet id past the end of a short packet as -1.
      this.fail({ kind: 'malformed', detail: `${packet.cmd.toUpperCase()} without a packet identifier`, firstByte: raw[0]!, raw });
      return;
    }
    if (hasBrokenProperties(packet)) {
      this.fail({ kind: 'malformed', detail: 'property runs past the end of the packet', firstByte: raw[0]!, raw });
      return;
    }
    if (packet.cmd === 'connect') {
      // Said to be an unacceptable protocol level (the broker answers CONNACK 0x01), or malformed.
      const mismatch = mismatchedProtocol(packet.protocolId, packet.protocolVersion);
      if (mismatch !== undefined) return this.fail({ kind: 'malformed', detail: mismatch, firstByte: raw[0]!, raw });
      this.version = (packet.protocolVersion ?? 4) as ProtocolVersion;
      const extra = bytesAfterConnect(raw, this.version === 5);
      if (extra > 0) return this.fail({ kind: 'malformed', detail: `CONNECT with ${extra} byte(s) after its last field`, firstByte: raw[0]!, raw });
    }
    if (this.version === 5 && hasProperties(packet)) {
      const id = repeatedProperty(raw);
      if (id !== 0) {
        this.fail({ kind: 'protocol-error', detail: `${packet.cmd.toUpperCase()} with property 0x${id.toString(16).padStart(2, '0')} more than once` });
        return;
      }
      const flag = packet.cmd === 'connect' ? connectFlagOutOfRange(raw) : 0;
      if (flag !== 0) return this.fail({ kind: 'protocol-error', detail: `CONNECT with property 0x${flag.toString(16)} other than 0 or 1` });
    }
    if (packet.cmd === 'publish' && this.version === 5 && packet.properties?.userProperties !== undefined) {
      keepWireOrder(packet.properties.userProperties as Record<string, string | string[]>, raw);
    } else if (packet.cmd === 'connect' && this.version === 5 && packet.will?.properties?.userProperties !== undefined) {
      keepWillWireOrder(packet.will.properties.userProperties as Record<string, string | string[]>, raw);
    }
    this.sink.onPacket(packet, raw);
  }

  private fail(err: DecodeError): void {
    if (this.failed) return;
    this.failed = true;
    this.chunks = undefined;
    this.buffered = 0;
    this.sink.onError(err);
  }
}

/**
 * PUBLISH without properties is the hot path (every sensor reading), decoded here
 * directly: fixed header, topic, packet id, payload (§3.3). Anything unusual (v5
 * properties, QoS 3, short packets) returns undefined and goes to mqtt-packet, which
 * stays the reference codec; test/broker/codec.test.ts checks both agree.
 */
export function decodePublish(raw: Buffer, version: ProtocolVersion): IPublishPacket | undefined {
  const b0 = raw[0]!;
  const qos = (b0 >> 1) & 3;
  if (qos === 3) return undefined;
  let i = 1;
  while ((raw[i]! & 0x80) !== 0) i++;
  i++;
  const length = raw.length - i;
  if (i + 2 > raw.length) return undefined;
  const tlen = raw.readUInt16BE(i);
  i += 2;
  if (i + tlen > raw.length) return undefined;
  const topic = raw.toString('utf8', i, i + tlen);
  i += tlen;
  let messageId: number | undefined;
  if (qos > 0) {
    if (i + 2 > raw.length) return undefined;
    messageId = raw.readUInt16BE(i);
    i += 2;
  }
  if (version === 5) {
    if (i >= raw.length || raw[i] !== 0) return undefined; // has properties
    i++;
  }
  // Copied: a retained or queued message must not pin the socket's read buffer.
  const payload = Buffer.from(raw.subarray(i));
  return { cmd: 'publish', topic, payload, qos: qos as 0 | 1 | 2, dup: (b0 & 8) !== 0, retain: (b0 & 1) !== 0, messageId, length };
}

const ID_CMDS = new Set(['puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback']);

function missingPacketId(p: Packet): boolean {
  const needs = ID_CMDS.has(p.cmd) || (p.cmd === 'publish' && p.qos > 0);
  if (!needs) return false;
  const id = p.messageId;
  return id === undefined || !Number.isInteger(id) || id < 0 || id > 65535;
}

/** Reason codes mqtt-packet accepts in a PUBACK or PUBREC (§3.4.2.1, §3.5.2.1). */
const PUBACK_CODES = new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]);

/**
 * A v5 PUBACK or PUBREC refusing a message with an error code (≥ 0x80) outside the list the
 * standard gives for it, such as the 0x95 (packet too large) Mosquitto 2.0 sends for a
 * message over its message_size_limit. mqtt-packet rejects the whole packet, and a bridge
 * that drops its link over it sends the same message again on every reconnect, for ever.
 * It is read as the refusal it is: the packet is parsed with 0x80 in that byte, and the
 * code the peer sent is put back.
 */
function unlistedRefusal(raw: Buffer): { input: Buffer; code: number } | undefined {
  let i = 1;
  while (i < raw.length && (raw[i]! & 0x80) !== 0) i++;
  const at = i + 3; // past the remaining length and the packet id
  const code = raw[at];
  if (code === undefined || code < 0x80 || PUBACK_CODES.has(code)) return undefined;
  const input = Buffer.from(raw);
  input[at] = 0x80;
  return { input, code };
}

const ACK_CMDS = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const;
/** Fixed-header flags each ack must carry (§2.1.3): PUBREL has 0b0010, the others 0. */
const ACK_FLAGS = [0, 0, 2, 0];

/**
 * PUBACK/PUBREC/PUBREL/PUBCOMP of the plain form (Remaining Length 2: just the packet
 * id, reason Success) come with every QoS 1/2 message; decoded here directly. Any other
 * form goes to mqtt-packet.
 */
export function decodeAck(raw: Buffer): Packet | undefined {
  if (raw.length !== 4 || raw[1] !== 2) return undefined;
  const i = (raw[0]! >> 4) - 4;
  if ((raw[0]! & 0x0f) !== ACK_FLAGS[i]) return undefined;
  return { cmd: ACK_CMDS[i]!, messageId: raw.readUInt16BE(2), length: 2 } as Packet;
}

/** The plain form of an ack (reason Success, no properties): valid in 3.1.1 and 5 (§3.4.2.1). */
export function encodeAck(cmd: (typeof ACK_CMDS)[number], packetId: number): Buffer {
  const i = ACK_CMDS.indexOf(cmd);
  const buf = Buffer.allocUnsafe(4);
  buf[0] = ((i + 4) << 4) | ACK_FLAGS[i]!;
  buf[1] = 2;
  buf.writeUInt16BE(packetId, 2);
  return buf;
}

/**
 * Encodes a PUBLISH in one allocation (the fan-out and bridge hot path). v5 properties of
 * the kinds a forwarded message carries (user properties, message expiry, content type,
 * response topic, correlation data, payload format) are encoded here too, in the order
 * mqtt-packet writes them; any other property goes to mqtt-packet, the reference codec
 * (test/mqtt/codec.test.ts checks both give the same bytes).
 */
export function encodePublish(
  topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, dup: boolean, packetId: number, version: ProtocolVersion,
  properties?: object,
): Buffer {
  let plen = 0;
  if (version === 5 && properties !== undefined) {
    const n = propertiesLength(properties as Record<string, unknown>);
    if (n === undefined) {
      return mqttPacket.generate(
        { cmd: 'publish', topic, payload, qos, retain, dup, messageId: qos > 0 ? packetId : undefined, properties: properties as never },
        { protocolVersion: 5 },
      );
    }
    plen = n;
  }
  const tlen = Buffer.byteLength(topic, 'utf8');
  const rem = 2 + tlen + (qos > 0 ? 2 : 0) + (version === 5 ? varIntSize(plen) + plen : 0) + payload.length;
  const buf = Buffer.allocUnsafe(1 + varIntSize(rem) + rem);
  buf[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  let o = writeVarInt(buf, 1, rem);
  buf.writeUInt16BE(tlen, o);
  o += 2;
  o += buf.write(topic, o, 'utf8');
  if (qos > 0) {
    buf.writeUInt16BE(packetId, o);
    o += 2;
  }
  if (version === 5) {
    o = writeVarInt(buf, o, plen);
    if (plen > 0) o = writeProperties(buf, o, properties as Record<string, unknown>);
  }
  payload.copy(buf, o);
  return buf;
}

/**
 * mqtt-packet reads a property that runs past the end of the packet as null (strings,
 * binary), -1 (integers) or false (variable byte integers) instead of failing. Such a
 * packet is malformed (§2.2.2.2), and its values must never reach the encoder, which
 * throws on them when the message is forwarded.
 */
function hasBrokenProperties(packet: Packet): boolean {
  const p = packet as { properties?: Record<string, unknown>; will?: { properties?: Record<string, unknown> } };
  return brokenProps(p.properties) || (packet.cmd === 'connect' && brokenProps(p.will?.properties));
}

function hasProperties(packet: Packet): boolean {
  const p = packet as { properties?: object; will?: { properties?: object } };
  return p.properties !== undefined || p.will?.properties !== undefined;
}

function brokenValue(v: unknown): boolean {
  return v === null || v === undefined || v === -1 || (typeof v === 'number' && Number.isNaN(v));
}

function brokenProps(props: Record<string, unknown> | undefined): boolean {
  if (props === undefined || props === null) return false;
  if (typeof props !== 'object') return true;
  for (const key of Object.keys(props)) {
    const v = props[key];
    if (brokenValue(v) || (key === 'subscriptionIdentifier' && v === false)) return true;
    if (Array.isArray(v) && v.some((x) => brokenValue(x) || x === false)) return true;
    if (key === 'userProperties' && typeof v === 'object') {
      for (const x of Object.values(v as Record<string, unknown>)) {
        if (brokenValue(x) || (Array.isArray(x) && x.some(brokenValue))) return true;
      }
    }
  }
  return false;
}

/**
 * Total length of the packet starting at `off` (fixed header included), undefined if
 * the header is not complete yet, -1 if the Remaining Length is malformed (more than
 * four bytes, §2.2.3).
 */
export function readFrameLength(buf: Buffer, off: number): number | undefined {
  let mult = 1;
  let len = 0;
  for (let i = 1; i <= 4; i++) {
    if (off + i >= buf.length) return undefined;
    const b = buf[off + i]!;
    len += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return 1 + i + len;
    mult *= 128;
  }
  return -1;
}

export function encode(packet: Packet, protocolVersion: ProtocolVersion): Buffer {
  return mqttPacket.generate(packet, { protocolVersion });
}

/**
 * Offset of the Packet Identifier in an encoded PUBLISH with QoS > 0, so one encoding
 * can be copied and patched per subscriber instead of encoded again.
 */
export function publishPacketIdOffset(buf: Buffer): number {
  let i = 1;
  while ((buf[i]! & 0x80) !== 0) i++;
  const headerLen = i + 1;
  const topicLen = buf.readUInt16BE(headerLen);
  return headerLen + 2 + topicLen;
}

/** Sets DUP on an encoded PUBLISH. */
export function setDupFlag(buf: Buffer): void {
  buf[0] = buf[0]! | 0x08;
}

export type { IPublishPacket as PublishPacket };
