/**
 * The only module that imports mqtt-packet. It frames the byte stream into whole
 * packets (bounded by the maximum packet size before anything is buffered beyond it),
 * decodes them, and encodes outgoing packets.
 *
 *   socket bytes → Framer (fixed header + remaining length, size check)
 *               → mqtt-packet parser (one whole packet at a time) → Packet
 */
import mqttPacket from 'mqtt-packet';
import type { Packet, IPublishPacket } from 'mqtt-packet';

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
  | { kind: 'too-large'; detail: string; size: number };

export interface DecoderSink {
  onPacket(packet: Packet, raw: Buffer): void;
  onError(err: DecodeError): void;
}

/** Decodes a TCP byte stream into packets. Never throws on wire garbage. */
export class Decoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private parser: ReturnType<typeof mqttPacket.parser> | undefined;
  private current: Packet | undefined;
  private currentRaw: Buffer | undefined;
  private failed = false;

  constructor(
    private maxPacketSize: number,
    private readonly sink: DecoderSink,
  ) {}

  setMaxPacketSize(n: number): void {
    this.maxPacketSize = n;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    let buf: Buffer;
    if (this.buffered === 0) {
      buf = chunk;
    } else {
      this.chunks.push(chunk);
      buf = Buffer.concat(this.chunks, this.buffered + chunk.length);
      this.chunks = [];
      this.buffered = 0;
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
        // [MQTT-3.2.2-? / 4.13] v5 reason 0x95; the rest of the stream is not read.
        this.fail({ kind: 'too-large', detail: `packet of ${frame} bytes exceeds ${this.maxPacketSize}`, size: frame });
        return;
      }
      if (off + frame > buf.length) break; // body incomplete
      const raw = buf.subarray(off, off + frame);
      off += frame;
      this.decodeOne(raw);
    }
    if (off < buf.length && !this.failed) {
      const rest = buf.subarray(off);
      // Copy the tail so a large read buffer is not pinned by a few leftover bytes.
      this.chunks.push(rest.length < 4096 ? Buffer.from(rest) : rest);
      this.buffered = rest.length;
    }
  }

  private decodeOne(raw: Buffer): void {
    const parser = this.parser ?? this.makeParser();
    this.current = undefined;
    this.currentRaw = raw;
    parser.parse(raw);
    this.currentRaw = undefined;
    if (this.failed) return;
    const packet = this.current as Packet | undefined;
    if (packet === undefined) {
      this.fail({ kind: 'malformed', detail: 'incomplete packet', firstByte: raw[0]!, raw });
      return;
    }
    this.current = undefined;
    this.sink.onPacket(packet, raw);
  }

  private makeParser(): ReturnType<typeof mqttPacket.parser> {
    const parser = mqttPacket.parser();
    parser.on('packet', (p: Packet) => {
      this.current = p;
    });
    parser.on('error', (err: Error) => {
      const raw = this.currentRaw;
      this.fail({ kind: 'malformed', detail: err.message, firstByte: raw ? raw[0]! : -1, raw });
    });
    this.parser = parser;
    return parser;
  }

  private fail(err: DecodeError): void {
    if (this.failed) return;
    this.failed = true;
    this.chunks = [];
    this.buffered = 0;
    this.sink.onError(err);
  }
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
