/**
 * PUBLISH bytes towards one client: the shared encoding (one per version, QoS and retain
 * flag when a publish fans out) and the v5 encoding with per-subscriber properties
 * (Subscription Identifiers, remaining expiry, topic aliases).
 */
import type { Message, QoS } from '../core/message.js';
import { encodePublish, type IPublishPacket } from '../mqtt/codec.js';
import type { Connection } from './connection.js';

/** Encodings of a message shared by every subscriber that needs the same bytes. */
const encodings = new WeakMap<Message, (Buffer | undefined)[]>();

/** Whether sharedEncoding hands `conn` bytes that other subscribers share (a publish fanning out). */
export const encodingShared = (conn: Connection): boolean => conn.ctx.routeFanout > 1;

/**
 * The bytes of a PUBLISH without per-subscriber properties. When one publish fans out
 * to many subscribers it is encoded once per (version, QoS, retain) and shared: the
 * caller must copy them before changing a byte (encodingShared). Otherwise they are its own.
 */
export function sharedEncoding(conn: Connection, msg: Message, qos: QoS, retainFlag: boolean): Buffer {
  const fanout = encodingShared(conn);
  const slot = (conn.version === 5 ? 6 : 0) + qos * 2 + (retainFlag ? 1 : 0);
  let cache: (Buffer | undefined)[] | undefined;
  if (fanout) {
    cache = encodings.get(msg);
    const hit = cache?.[slot];
    if (hit !== undefined) return hit;
  }
  const props = conn.version === 5 ? msg.properties : undefined;
  const buf = encodePublish(msg.topic, msg.payload, qos, retainFlag, false, 1, conn.version, props);
  if (fanout) {
    if (cache === undefined) {
      cache = [];
      encodings.set(msg, cache);
    }
    cache[slot] = buf;
  }
  return buf;
}

/** A v5 PUBLISH with this subscriber's properties; undefined when over the client's Maximum Packet Size. */
export function encodeV5Publish(
  conn: Connection,
  msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined,
  packetId: number, dup: boolean, expiry: number | undefined,
): Buffer | undefined {
  const properties: NonNullable<IPublishPacket['properties']> = { ...msg.properties };
  if (expiry !== undefined) properties.messageExpiryInterval = expiry;
  if (subIds !== undefined) properties.subscriptionIdentifier = subIds.length === 1 ? subIds[0]! : [...subIds];
  let topic = msg.topic;
  let newAlias: number | undefined;
  if (conn.clientTopicAliasMax > 0) {
    // Topic aliases towards the client, only up to the maximum it announced [MQTT-3.3.2-9].
    conn.outAliases ??= new Map();
    const alias = conn.outAliases.get(topic);
    if (alias !== undefined) {
      properties.topicAlias = alias;
      topic = '';
    } else if (conn.outAliases.size < conn.clientTopicAliasMax) {
      newAlias = conn.outAliases.size + 1;
      properties.topicAlias = newAlias;
    }
  }
  const buf = encodePublish(topic, msg.payload, qos, retainFlag, dup, packetId, 5, properties);
  if (buf.length > conn.clientMaxPacketSize) return undefined;
  if (newAlias !== undefined) conn.outAliases!.set(msg.topic, newAlias);
  return buf;
}
