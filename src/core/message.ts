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
}

/**
 * One string per source: an MQTT session's origin is its client id; any other origin is
 * its kind and id joined by U+0000, which a client id cannot contain (connect refuses it),
 * so a client called "boiler" is not mistaken for the serial device "boiler". No Local
 * compares these [MQTT-3.8.3-3]; the outbox's commit pacer keys its publishers by them.
 */
export function originKey(origin: Origin): string {
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
