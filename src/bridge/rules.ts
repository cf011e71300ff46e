/**
 * Bridge rules: which topics cross, in which direction, and how their names change.
 * `pattern` is matched below the prefixes, so one rule maps
 *   local  <local_prefix><X>   ⇄   remote <remote_prefix><X>   for every X matching pattern.
 */
import { topicMatches, validateTopicFilter } from '../core/topic.js';
import { OutpostError } from '../core/errors.js';
import type { QoS } from '../core/message.js';

export interface RuleInput {
  pattern: string;
  direction: 'out' | 'in' | 'both';
  qos: QoS;
  local_prefix: string;
  remote_prefix: string;
}

export interface Rule {
  direction: 'out' | 'in' | 'both';
  qos: QoS;
  localPrefix: string;
  remotePrefix: string;
  /** local_prefix + pattern: what the bridge takes from the local bus. */
  localFilter: string;
  /** remote_prefix + pattern: what the bridge subscribes to on the cloud. */
  remoteFilter: string;
}

export function compileRules(bridge: string, rules: readonly RuleInput[]): Rule[] {
  return rules.map((r, i) => {
    const rule: Rule = {
      direction: r.direction,
      qos: r.qos,
      localPrefix: r.local_prefix,
      remotePrefix: r.remote_prefix,
      localFilter: r.local_prefix + r.pattern,
      remoteFilter: r.remote_prefix + r.pattern,
    };
    for (const prefix of [rule.localPrefix, rule.remotePrefix]) {
      if (prefix.includes('+') || prefix.includes('#')) {
        throw new OutpostError('CONFIG_INVALID', `bridges.${bridge}.rules[${i}]: prefix "${prefix}" holds a wildcard; a prefix is literal text, put wildcards in the pattern`);
      }
    }
    for (const f of [rule.localFilter, rule.remoteFilter]) {
      const check = validateTopicFilter(f);
      if (!check.ok) {
        throw new OutpostError('CONFIG_INVALID', `bridges.${bridge}.rules[${i}]: "${f}" is not a valid topic filter (${check.reason}); fix pattern or its prefixes`);
      }
    }
    return rule;
  });
}

/**
 * Does a rule map `topic` (on the side of `prefix` and `filter`) to a topic on the other side?
 * Only a topic of the form prefix + X does, X matching the pattern: "a/#" also matches "a",
 * which has no prefix "a/" to cut off. And the topic it maps to must not be empty ("a/" under
 * local_prefix "a/" and no remote_prefix): a PUBLISH without a topic name is malformed, the
 * cloud closes the link, and the row would be sent again on every reconnect.
 */
function maps(filter: string, prefix: string, otherPrefix: string, topic: string): boolean {
  return topic.startsWith(prefix) && (otherPrefix !== '' || topic.length > prefix.length) && topicMatches(filter, topic);
}

/** The first out/both rule that maps a local topic. */
export function outboundRule(rules: readonly Rule[], localTopic: string): Rule | undefined {
  for (const r of rules) if (r.direction !== 'in' && maps(r.localFilter, r.localPrefix, r.remotePrefix, localTopic)) return r;
  return undefined;
}

/** The first in/both rule that maps a remote topic. */
export function inboundRule(rules: readonly Rule[], remoteTopic: string): Rule | undefined {
  for (const r of rules) if (r.direction !== 'out' && maps(r.remoteFilter, r.remotePrefix, r.localPrefix, remoteTopic)) return r;
  return undefined;
}

export function toRemote(rule: Rule, localTopic: string): string {
  return rule.remotePrefix + localTopic.slice(rule.localPrefix.length);
}

export function toLocal(rule: Rule, remoteTopic: string): string {
  return rule.localPrefix + remoteTopic.slice(rule.remotePrefix.length);
}

/**
 * MQTT 5 request/response across the bridge: a Response Topic names where the answer goes, on
 * the side the request came from. A request from the cloud with Response Topic "sites/17/reply/9"
 * reaches a local responder (a serial device's command result, an app) that publishes the
 * answer locally; it crosses back only under the local name an out rule maps to that remote
 * name ("reply/9"). So the Response Topic is translated like the topic, when a rule of the
 * opposite direction maps it back exactly, and left as it is otherwise (the answer then stays
 * on the side it is published on, as before).
 */
export function responseToLocal(rules: readonly Rule[], remoteTopic: string): string {
  const back = rules.find((r) => r.direction !== 'in' && maps(r.remoteFilter, r.remotePrefix, r.localPrefix, remoteTopic));
  if (back === undefined) return remoteTopic;
  const local = toLocal(back, remoteTopic);
  const out = outboundRule(rules, local);
  return out !== undefined && toRemote(out, local) === remoteTopic ? local : remoteTopic;
}

/** The cloud's name of a local Response Topic, for a request going up (see responseToLocal). */
export function responseToRemote(rules: readonly Rule[], localTopic: string): string {
  const back = rules.find((r) => r.direction !== 'out' && maps(r.localFilter, r.localPrefix, r.remotePrefix, localTopic));
  if (back === undefined) return localTopic;
  const remote = toRemote(back, localTopic);
  const inb = inboundRule(rules, remote);
  return inb !== undefined && toLocal(inb, remote) === localTopic ? remote : localTopic;
}
