/**
 * How a message is laid out as an outbox row, shared by every Outbox implementation so
 * that they count bytes the same way and round-trip the same fields.
 */
import type { MessageProperties, QoS, SourceKind, UserProperties } from '../core/message.js';
import { fromPairs, wireOrder } from '../mqtt/user-property-order.js';
import type { StoredRow } from './backend.js';
import type { OutboxEntry } from './outbox.js';

/**
 * MQTT 5 properties as compact JSON with one-letter keys (they are written once per
 * message, and flash wear is per byte): p payload format, c content type, r response
 * topic, d correlation data (base64), u user properties (an object by name, or a list of
 * [name, value] pairs when that is their order). No properties → null, so the
 * common case costs nothing (a NULL column is a zero-byte value in SQLite's record format).
 */
export function encodeProperties(props: MessageProperties | undefined): string | null {
  if (props === undefined) return null;
  const o: { p?: 1 | 0; c?: string; r?: string; d?: string; u?: UserProperties | Array<[string, string]> } = {};
  let any = false;
  if (props.payloadFormatIndicator !== undefined) {
    o.p = props.payloadFormatIndicator ? 1 : 0;
    any = true;
  }
  if (props.contentType !== undefined) {
    o.c = props.contentType;
    any = true;
  }
  if (props.responseTopic !== undefined) {
    o.r = props.responseTopic;
    any = true;
  }
  if (props.correlationData !== undefined) {
    o.d = props.correlationData.toString('base64');
    any = true;
  }
  if (props.userProperties !== undefined && Object.keys(props.userProperties).length > 0) {
    // In wire order when grouping by name changed it [MQTT-3.3.2-18]: a list of pairs then.
    const ordered = wireOrder(props.userProperties);
    o.u = ordered === undefined ? props.userProperties : ordered.map(([name, value]): [string, string] => [name, value]);
    any = true;
  }
  return any ? JSON.stringify(o) : null;
}

export function decodeProperties(json: string | null): MessageProperties | undefined {
  if (json === null) return undefined;
  const o = JSON.parse(json) as { p?: 1 | 0; c?: string; r?: string; d?: string; u?: UserProperties | Array<[string, string]> };
  const props: MessageProperties = {};
  if (o.p !== undefined) props.payloadFormatIndicator = o.p === 1;
  if (o.c !== undefined) props.contentType = o.c;
  if (o.r !== undefined) props.responseTopic = o.r;
  if (o.d !== undefined) props.correlationData = Buffer.from(o.d, 'base64');
  if (o.u !== undefined) props.userProperties = Array.isArray(o.u) ? fromPairs(o.u) : o.u;
  return props;
}

/** What a message costs against max_bytes: payload + topic + encoded properties. */
export function recordBytes(topic: string, payload: Buffer, props: string | null): number {
  return payload.length + Buffer.byteLength(topic) + (props === null ? 0 : Buffer.byteLength(props));
}

export function toEntry(r: StoredRow, storeId: string): OutboxEntry {
  return {
    seq: r.seq,
    topic: r.topic,
    payload: r.payload,
    qos: r.qos as QoS,
    retain: r.retain === 1,
    properties: decodeProperties(r.props),
    createdAt: r.createdAt,
    expiresAt: r.expiresAt ?? undefined,
    originKind: r.originKind as SourceKind,
    originId: r.originId,
    sourceSeq: r.sourceSeq,
    msgId: `${storeId}-${r.seq}`,
  };
}
