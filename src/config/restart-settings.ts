/**
 * Which settings a live reload (SIGHUP, `systemctl reload outpost`) cannot apply: the one
 * table next to the schema. The generated JSON Schema says so in each one's description
 * (json-schema.ts), and a reload that changes one logs a line and keeps the running value.
 *
 * Everything not listed here is applied live by a reload step (src/reload/); a test checks
 * that every key of the schema is either here or covered by a step.
 *
 * A path names a key and everything below it (`broker` is every broker limit).
 */
import { sameValue } from '../core/same-value.js';
import { deepFreeze } from './load.js';
import type { Config } from './schema.js';

export const RESTART_SETTINGS: readonly string[] = [
  // Sockets bound at start; the anonymous policy is fixed per listener when it is made.
  'listeners',
  'auth.allow_anonymous',
  // The broker reads its limits when it is constructed.
  'broker',
  // The log destination and its formatter are made once; log.level is live.
  'log.format',
  // The open database, its directory lock and its pragmas.
  'store',
  // The MQTT-SN UDP sockets, session table and its timers; predefined topics are live.
  'mqttsn.hosts',
  'mqttsn.port',
  'mqttsn.gateway_id',
  'mqttsn.max_datagram_size',
  'mqttsn.max_clients',
  'mqttsn.retry_interval',
  'mqttsn.max_retries',
  'mqttsn.max_topics_per_client',
  'mqttsn.max_buffered_messages',
  'mqttsn.session_expiry',
  'mqttsn.qos_minus_one_sources',
  'mqttsn.advertise',
  'mqttsn.rate_limit',
  // The HTTP listener.
  'metrics',
];

/** What the description of a restart-only setting ends with (in the JSON Schema). */
export const RESTART_NOTE = 'Changing it needs a restart (systemctl restart outpost); a reload keeps the running value.';

/** One line per changed restart-only setting, as the reload logs it. */
export function restartMessage(path: string): string {
  return `${path} changed: needs a restart (systemctl restart outpost); keeping the running value`;
}

type Json = unknown;

function valueAt(root: Json, path: readonly string[]): Json {
  let cur = root;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, Json>)[k];
  }
  return cur;
}

/**
 * The restart-only settings that differ between the running config and the new one.
 * When a whole section appears or disappears (mqttsn: added), the section is named once.
 */
export function restartChanges(running: Config, next: Config): string[] {
  const out = new Set<string>();
  for (const entry of RESTART_SETTINGS) {
    const path = entry.split('.');
    if (sameValue(valueAt(running, path), valueAt(next, path))) continue;
    // The shortest prefix present on one side only, else the setting itself.
    let at = path;
    for (let n = 1; n < path.length; n++) {
      const prefix = path.slice(0, n);
      if ((valueAt(running, prefix) === undefined) !== (valueAt(next, prefix) === undefined)) {
        at = prefix;
        break;
      }
    }
    out.add(at.join('.'));
  }
  return [...out];
}

/** `next` with the running value put back at each changed restart-only path (frozen). */
export function keepRunningValues(running: Config, next: Config, paths: readonly string[]): Config {
  if (paths.length === 0) return next;
  const out = structuredClone(next) as Record<string, Json>;
  for (const p of paths) {
    const path = p.split('.');
    const value = valueAt(running, path);
    let parent: Record<string, Json> = out;
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string, Json>;
    const last = path[path.length - 1]!;
    if (value === undefined) delete parent[last];
    else parent[last] = structuredClone(value);
  }
  return deepFreeze(out as Config);
}
