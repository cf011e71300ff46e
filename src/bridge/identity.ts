/**
 * End-to-end identity of a forwarded message, so the cloud can drop replays and see gaps.
 *
 *  - properties (MQTT 5): three user properties are added to the message:
 *        outpost-id   "<store id>-<outbox seq>"   stable across resends and restarts
 *        outpost-src  "<origin kind>:<origin id>" e.g. "mqtt:boiler-7", "serial:boiler"
 *        outpost-seq  "<n>"                       1, 2, 3… per source and bridge, no holes
 *                                                 unless the outbox dropped a message
 *  - envelope (for 3.1.1 clouds, opt-in): the payload becomes JSON
 *        {"id": …, "src": …, "seq": n, "ts": <ms since epoch>, "payload": "<text>"}
 *    with "payload_b64" instead of "payload" when the payload is not UTF-8. A retained message
 *    with no payload goes unwrapped, so that it still clears the topic at the cloud.
 *  - none: the message goes as published.
 */
import { isUtf8 } from 'node:buffer';
import type { MessageProperties } from '../core/message.js';
import { fromPairs, orderedPairs, wireOrder } from '../mqtt/user-property-order.js';
import type { OutboxEntry } from '../store/outbox.js';

export type IdentityMode = 'properties' | 'envelope' | 'none';

export const ID_PROPERTY = 'outpost-id';
export const SOURCE_PROPERTY = 'outpost-src';
export const SEQ_PROPERTY = 'outpost-seq';

export function withIdentity(
  mode: IdentityMode,
  e: OutboxEntry,
): { payload: Buffer; properties: MessageProperties | undefined } {
  if (mode === 'none') return { payload: e.payload, properties: e.properties };
  const src = `${e.originKind}:${e.originId}`;
  if (mode === 'properties') {
    if (e.properties === undefined) {
      // Most messages carry no properties: one literal of a fixed shape.
      return { payload: e.payload, properties: { userProperties: { 'outpost-id': e.msgId, 'outpost-src': src, 'outpost-seq': String(e.sourceSeq) } } };
    }
    const own = e.properties.userProperties;
    const added = { [ID_PROPERTY]: e.msgId, [SOURCE_PROPERTY]: src, [SEQ_PROPERTY]: String(e.sourceSeq) };
    // The publisher's own pairs keep their order [MQTT-3.3.2-18]; ours replace any of the same name and come last.
    const userProperties = own !== undefined && wireOrder(own) !== undefined
      ? fromPairs([...orderedPairs(own).filter(([name]) => !Object.prototype.hasOwnProperty.call(added, name)), ...Object.entries(added)])
      : { ...own, ...added };
    return { payload: e.payload, properties: { ...e.properties, userProperties } };
  }
  // A retained message with no payload deletes the topic's retained message [MQTT-3.3.1-10];
  // wrapped, it would be retained at the cloud as an envelope and the topic never cleared there.
  // It goes as published: the cloud sees no envelope for that outpost-seq.
  if (e.retain && e.payload.length === 0) return { payload: e.payload, properties: e.properties };
  const body: Record<string, unknown> = { id: e.msgId, src, seq: e.sourceSeq, ts: e.createdAt };
  if (isUtf8(e.payload)) body.payload = e.payload.toString('utf8');
  else body.payload_b64 = e.payload.toString('base64');
  return { payload: Buffer.from(JSON.stringify(body)), properties: e.properties };
}
