/**
 * The message that travels on the in-process bus. Every source (MQTT client,
 * MQTT-SN sensor, serial device, bridge, the gateway itself) produces these.
 */
export type QoS = 0 | 1 | 2;

export type UserProperties = Record<string, string | string[]>;

/** MQTT 5 application properties carried end to end [MQTT-3.3.2-*]. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperties;
}

export type SourceKind = 'mqtt' | 'mqttsn' | 'serial' | 'bridge' | 'system';

export interface Origin {
  kind: SourceKind;
  /** Client id, device id, bridge name… */
  id: string;
  /**
   * originKey() of this origin, made once by a source that publishes often under one
   * origin (makeOrigin): the ACL cache, the commit pacer and the journal look each
   * message's origin up by it, and a string built per message is hashed anew each time.
   */
  readonly key?: string;
}

/** An origin that carries its key (for sources that reuse one origin for every message). */
export function makeOrigin(kind: SourceKind, id: string): Origin {
  return { kind, id, key: originKey({ kind, id }) };
}

/**
 * One string per source: an MQTT session's origin is its client id; any other origin is
 * its kind and id joined by U+0000, which a client id cannot contain (connect refuses it),
 * so a client called "boiler" is not mistaken for the serial device "boiler". No Local
 * compares these [MQTT-3.8.3-3]; the outbox's commit pacer keys its publishers by them.
 */
export function originKey(origin: Origin): string {
  if (origin.key !== undefined) return origin.key;
  return origin.kind === 'mqtt' ? origin.id : `${origin.kind}\u0000${origin.id}`;
}

export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: MessageProperties;
  /** Absolute expiry in clock milliseconds, from Message Expiry Interval [MQTT-3.3.2-5]. */
  expiresAt?: number;
  origin: Origin;
}

/**
 * Makes `msg.payload` own its bytes, before a message is kept for long: as a retained message,
 * or queued for a client that is offline or asleep. A payload decoded from the wire is usually a
 * view into a larger buffer (a slice of Node's shared 8 KiB allocation pool, or of a datagram), and
 * one kept view keeps all of it resident: after the live fuzz, 321 retained messages of a few bytes
 * held 2.5 MiB of pool slabs. The bytes never change; the Buffer holding them is swapped, once,
 * for every holder of the message. Returns `msg`.
 */
export function ownPayload(msg: Message): Message {
  const p = msg.payload;
  if (p.byteLength < p.buffer.byteLength) {
    // allocUnsafeSlow: a buffer of exactly this size, never a slice of the pool.
    const own = Buffer.allocUnsafeSlow(p.byteLength);
    p.copy(own);
    msg.payload = own;
  }
  return msg;
}
