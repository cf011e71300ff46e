/**
 * `broker.max_topic_levels` for MQTT-SN topics: a REGISTER, a SUBSCRIBE, a Will topic or a
 * PUBLISH (whatever its TopicIdType names) deeper than the limit MQTT clients get is refused
 * as theirs is (broker/handlers/publish.ts, subscribe.ts, connect.ts), counted as
 * `too-many-levels` and logged rate-limited. The caller answers with the MQTT-SN code for a
 * refused topic: 0x02 "rejected: invalid topic ID" (§5.3.10) for REGACK, SUBACK and PUBACK,
 * 0x03 for a Will topic (CONNACK, WILLTOPICRESP), as for any invalid Will topic.
 */
import { parseSharedFilter } from '../core/topic.js';
import type { SnContext } from './context.js';
import type { Peer } from './session.js';

function levels(topic: string): number {
  let n = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) n++;
  return n;
}

/** True (counted and logged) when `topic` has more levels than allowed; `what` names the request. */
export function tooDeep(ctx: Pick<SnContext, 'maxTopicLevels' | 'reject'>, topic: string, peer: Peer | undefined, what: string): boolean {
  const max = ctx.maxTopicLevels;
  if (max === Infinity) return false;
  // A shared subscription's levels are those of its inner filter.
  const shared = parseSharedFilter(topic);
  const inner = shared !== null && typeof shared !== 'string' ? shared.filter : topic;
  if (levels(inner) <= max) return false;
  ctx.reject('too-many-levels', peer, `${what} "${topic}" refused: more than broker.max_topic_levels (${max}) levels`);
  return true;
}
