/**
 * Pure conversions between the upstream API and MQTT packets: the CONNECT we send, the
 * session a CONNACK describes, the PUBLISH we encode and the message an inbound PUBLISH is.
 */
import { OutpostError } from '../core/errors.js';
import { pickMessageProps } from '../mqtt/properties.js';
import type { QoS } from '../core/message.js';
import { encode, encodePublish, type IConnackPacket, type IConnectPacket, type IPublishPacket } from '../mqtt/codec.js';
import type { InboundMessage, UpstreamOptions, UpstreamPublish, UpstreamSession } from './upstream.js';

/** 256 MiB, the largest packet the protocol can express [MQTT-2.2.3]. */
export const MQTT_MAX_PACKET = 268_435_460;

/** mqtts://host[:8883] or mqtt://host[:1883]; IPv6 literals in brackets. */
export function parseUpstreamUrl(text: string): { host: string; port: number; secure: boolean } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OutpostError('BRIDGE_UPSTREAM', `bridge url "${text}" is not a URL: expected mqtts://host:port`);
  }
  if (url.protocol !== 'mqtts:' && url.protocol !== 'mqtt:') {
    throw new OutpostError('BRIDGE_UPSTREAM', `bridge url "${text}" must start with mqtts:// (or mqtt:// for tests)`);
  }
  const secure = url.protocol === 'mqtts:';
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? (secure ? 8883 : 1883) : Number(url.port), secure };
}

export function connectPacket(o: UpstreamOptions): IConnectPacket {
  const packet: IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: o.protocolVersion, clientId: o.clientId, clean: o.cleanStart, keepalive: o.keepalive };
  if (o.username !== undefined) packet.username = o.username;
  if (o.password !== undefined) packet.password = Buffer.from(o.password, 'utf8');
  // mqtt-packet writes protocol level 0x80 | 4 for bridgeMode (its type omits the field).
  if (o.protocolVersion === 4 && o.bridgeMode === true) Object.assign(packet, { bridgeMode: true });
  if (o.will !== undefined) packet.will = { topic: o.will.topic, payload: o.will.payload, qos: o.will.qos, retain: o.will.retain };
  if (o.protocolVersion === 5) {
    packet.properties = { sessionExpiryInterval: o.sessionExpiry };
    if (o.maxPacketSize !== undefined) packet.properties.maximumPacketSize = o.maxPacketSize;
  }
  return packet;
}

/**
 * The Receive Maximum assumed for a 3.1.1 broker, which announces none: Mosquitto's default
 * max_inflight_messages (and its own bridges' window). Over its limit of QoS 2 messages
 * between PUBLISH and PUBREL, Mosquitto answers a 3.1.1 client with a PUBREC that cannot say
 * "quota exceeded" and drops the message: a bridge with a window of 100 lost 1,372 of 2,000.
 */
export const V311_RECEIVE_MAXIMUM = 20;

/** What the broker's CONNACK (reason 0) tells us; defaults per [MQTT-3.2.2.3]. */
export function sessionOf(packet: IConnackPacket, version: 4 | 5): UpstreamSession {
  const props = packet.properties ?? {};
  return {
    sessionPresent: packet.sessionPresent,
    receiveMaximum: version === 4 ? V311_RECEIVE_MAXIMUM : (props.receiveMaximum ?? 65_535),
    maximumPacketSize: props.maximumPacketSize,
    topicAliasMaximum: props.topicAliasMaximum ?? 0,
    maximumQoS: (props.maximumQoS ?? 2) as QoS,
    retainAvailable: props.retainAvailable ?? true,
  };
}

/** PUBLISH bytes; application properties only on MQTT 5 (3.1.1 has none). */
export function encodeOutbound(p: UpstreamPublish, version: 4 | 5): Buffer {
  return encodePublish(p.topic, p.payload, p.qos, p.retain, p.dup, p.packetId, version, p.properties);
}

export function inboundOf(p: IPublishPacket): InboundMessage {
  const msg: InboundMessage = { topic: p.topic, payload: p.payload as Buffer, qos: p.qos, retain: p.retain };
  const pr = p.properties;
  if (pr === undefined) return msg;
  const props: NonNullable<InboundMessage['properties']> | undefined = pickMessageProps(pr);
  if (pr.messageExpiryInterval !== undefined) msg.properties = { ...props, messageExpiryInterval: pr.messageExpiryInterval };
  else if (props !== undefined) msg.properties = props;
  return msg;
}
