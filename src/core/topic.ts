/**
 * Topic names and filters: validation and matching, MQTT 3.1.1 §4.7 / MQTT 5.0 §4.7.
 * Pure functions, no I/O.
 */

export type TopicCheck = { ok: true } | { ok: false; reason: string };

const OK: TopicCheck = { ok: true };

/** UTF-8 string rules shared by names and filters [MQTT-1.5.4-1/-2], [MQTT-4.7.3-1/-2]. */
function checkString(s: string): TopicCheck {
  if (s.length === 0) return { ok: false, reason: 'empty topic' };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return { ok: false, reason: 'null character in topic' };
    // Lone surrogates mean the UTF-8 on the wire was ill-formed [MQTT-1.5.4-1].
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = s.charCodeAt(i + 1);
      if (!(n >= 0xdc00 && n <= 0xdfff)) return { ok: false, reason: 'ill-formed UTF-8 in topic' };
      i++;
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return { ok: false, reason: 'ill-formed UTF-8 in topic' };
  }
  if (Buffer.byteLength(s, 'utf8') > 65535) return { ok: false, reason: 'topic longer than 65535 bytes' };
  return OK;
}

/** A PUBLISH topic name: no wildcards [MQTT-3.3.2-2]. */
export function validateTopicName(name: string, maxLevels = Infinity): TopicCheck {
  const base = checkString(name);
  if (!base.ok) return base;
  if (name.includes('+') || name.includes('#')) return { ok: false, reason: 'wildcard in topic name' };
  if (maxLevels !== Infinity && countLevels(name) > maxLevels) return { ok: false, reason: 'too many topic levels' };
  return OK;
}

/** A SUBSCRIBE filter: `#` last and alone in its level, `+` alone in its level [MQTT-4.7.1-2/-3]. */
export function validateTopicFilter(filter: string, maxLevels = Infinity): TopicCheck {
  const base = checkString(filter);
  if (!base.ok) return base;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#')) {
      if (level !== '#' || i !== levels.length - 1) return { ok: false, reason: '"#" must be the last level and alone' };
    }
    if (level.includes('+') && level !== '+') return { ok: false, reason: '"+" must occupy a whole level' };
  }
  if (levels.length > maxLevels) return { ok: false, reason: 'too many topic levels' };
  return OK;
}

function countLevels(s: string): number {
  let n = 1;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 47) n++;
  return n;
}

export interface SharedFilter {
  group: string;
  filter: string;
}

/**
 * `$share/{group}/{filter}` [MQTT-4.8.2-1/-2]. Returns null for a normal filter,
 * a reason string for a malformed shared one.
 */
export function parseSharedFilter(filter: string): SharedFilter | null | string {
  if (!filter.startsWith('$share/')) return null;
  const rest = filter.slice(7);
  const slash = rest.indexOf('/');
  if (slash <= 0) return 'shared subscription needs "$share/group/filter"';
  const group = rest.slice(0, slash);
  if (group.includes('+') || group.includes('#')) return 'shared subscription group name must not contain wildcards';
  const inner = rest.slice(slash + 1);
  const check = validateTopicFilter(inner);
  if (!check.ok) return check.reason;
  return { group, filter: inner };
}

/** True when a filter contains a wildcard. */
export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/**
 * Does `filter` match `topic`? Leading wildcards do not match topics that start
 * with `$` [MQTT-4.7.2-1]. Both arguments are assumed valid. Walks both strings level by
 * level without splitting them (it runs for every rule and ACL entry of every message).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter.charCodeAt(0) === 43 || filter.charCodeAt(0) === 35)) return false;
  let f = 0; // start of the filter's current level
  let t = 0; // start of the topic's current level; past topic.length: no level left
  for (;;) {
    let fe = filter.indexOf('/', f);
    if (fe < 0) fe = filter.length;
    const len = fe - f;
    // '#' matches the rest, and the parent level too: "a/#" matches "a" [MQTT-4.7.1-2].
    if (len === 1 && filter.charCodeAt(f) === 35) return true;
    if (t > topic.length) return false;
    let te = topic.indexOf('/', t);
    if (te < 0) te = topic.length;
    if (len !== 1 || filter.charCodeAt(f) !== 43 /* + */) {
      if (te - t !== len) return false;
      for (let i = 0; i < len; i++) if (filter.charCodeAt(f + i) !== topic.charCodeAt(t + i)) return false;
    }
    f = fe + 1;
    t = te + 1;
    if (f > filter.length) return t > topic.length;
  }
}
