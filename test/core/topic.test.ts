import { describe, expect, it } from 'vitest';
import { hasWildcard, parseSharedFilter, topicMatches, validateTopicFilter, validateTopicName } from '../../src/core/topic.js';

const lone = String.fromCharCode(0xd800);
const loneLow = String.fromCharCode(0xdc00);

describe('validateTopicName', () => {
  const valid: [string, string][] = [
    ['a single level', 'a'],
    ['several levels', 'sensors/boiler/temp'],
    ['a lone separator: two empty levels [MQTT-4.7.1-1]', '/'],
    ['a leading separator', '/a'],
    ['a trailing separator', 'a/'],
    ['an empty level in the middle', 'a//b'],
    ['only separators', '///'],
    ['a $ topic', '$SYS/broker/uptime'],
    ['spaces, which are allowed in topics', 'a b/c d'],
    ['multi-byte characters', 'température/°C/日本'],
    ['a surrogate pair (well-formed astral character)', 'emoji/\u{1f600}'],
    ['a $ that is not at the start', 'a/$b'],
    ['U+FFFD, a legal character (the wire layer tells it from a decoding substitute)', 'a/\ufffd'],
  ];
  it.each(valid)('accepts %s', (_name, topic) => {
    expect(validateTopicName(topic)).toEqual({ ok: true });
  });

  const invalid: [string, string, RegExp][] = [
    ['an empty string [MQTT-4.7.3-1]', '', /empty/],
    ['a + wildcard [MQTT-3.3.2-2]', 'a/+', /wildcard/],
    ['a # wildcard [MQTT-3.3.2-2]', 'a/#', /wildcard/],
    ['a wildcard inside a level', 'a+b', /wildcard/],
    ['a # alone', '#', /wildcard/],
    ['a null character [MQTT-4.7.3-2]', 'a\u0000b', /null/],
    ['a lone high surrogate (ill-formed UTF-8) [MQTT-1.5.3-1]', `a${lone}b`, /UTF-8/],
    ['a high surrogate at the very end', `a${lone}`, /UTF-8/],
    ['a lone low surrogate', `a${loneLow}`, /UTF-8/],
  ];
  it.each(invalid)('refuses %s', (_name, topic, reason) => {
    const r = validateTopicName(topic);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('refuses a topic longer than 65535 UTF-8 bytes [MQTT-4.7.3-3]', () => {
    expect(validateTopicName('a'.repeat(65535)).ok).toBe(true);
    expect(validateTopicName('a'.repeat(65536)).ok).toBe(false);
    // 21846 × 3 bytes = 65538 bytes in only 21846 UTF-16 units
    expect(validateTopicName('€'.repeat(21846)).ok).toBe(false);
  });

  it('enforces the maximum number of levels when one is given', () => {
    expect(validateTopicName('a/b/c', 3).ok).toBe(true);
    expect(validateTopicName('a/b/c/d', 3)).toEqual({ ok: false, reason: 'too many topic levels' });
    expect(validateTopicName('///', 3).ok).toBe(false); // four empty levels
  });
});

describe('validateTopicFilter', () => {
  const valid: string[] = [
    '#', '+', 'a', 'a/#', 'a/+', '+/+', '+/#', 'a/+/b', 'a/+/b/#', '/', '/#', '/+', '+/', '//', 'a//#',
    '$SYS/#', '$SYS/+/x', 'sport/tennis/player1/#', '+/tennis/#',
  ];
  it.each(valid)('accepts "%s" [MQTT-4.7.1-2/-3]', (filter) => {
    expect(validateTopicFilter(filter)).toEqual({ ok: true });
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['a#', /#/],
    ['#a', /#/],
    ['a/#/b', /#/],
    ['#/a', /#/],
    ['##', /#/],
    ['a/b#', /#/],
    ['a+', /\+/],
    ['+a', /\+/],
    ['a/b+/c', /\+/],
    ['++', /\+/],
    ['sport+', /\+/],
    ['a\u0000', /null/],
    [`a/${lone}`, /UTF-8/],
  ];
  it.each(invalid)('refuses "%s"', (filter, reason) => {
    const r = validateTopicFilter(filter);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('enforces the maximum number of levels when one is given', () => {
    expect(validateTopicFilter('a/+/#', 3).ok).toBe(true);
    expect(validateTopicFilter('a/+/b/#', 3).ok).toBe(false);
  });
});

describe('parseSharedFilter', () => {
  it.each([
    ['$share/g/a/b', { group: 'g', filter: 'a/b' }],
    ['$share/group-1/#', { group: 'group-1', filter: '#' }],
    ['$share/g/+/x', { group: 'g', filter: '+/x' }],
    ['$share/g//', { group: 'g', filter: '/' }],
  ])('splits "%s" into group and inner filter [MQTT-4.8.2-1]', (filter, expected) => {
    expect(parseSharedFilter(filter)).toEqual(expected);
  });

  it.each(['a/b', '#', '$SYS/#', '$share', '$sharex/g/a', 'x/$share/g/a'])('returns null for the ordinary filter "%s"', (filter) => {
    expect(parseSharedFilter(filter)).toBeNull();
  });

  it.each([
    ['$share/g', 'no inner filter'],
    ['$share/', 'no group'],
    ['$share//a', 'an empty group name'],
    ['$share/g+/a', 'a + in the group name [MQTT-4.8.2-2]'],
    ['$share/g#/a', 'a # in the group name [MQTT-4.8.2-2]'],
    ['$share/g/', 'an empty inner filter'],
    ['$share/g/a/#/b', 'an invalid inner filter'],
    ['$share/g/a+', 'a + inside a level of the inner filter'],
  ])('refuses "%s" (%s) with a reason', (filter) => {
    expect(typeof parseSharedFilter(filter)).toBe('string');
  });
});

describe('hasWildcard', () => {
  it.each([
    ['a/b', false],
    ['a/+', true],
    ['#', true],
    ['$SYS/x', false],
  ])('"%s" → %s', (filter, expected) => {
    expect(hasWildcard(filter)).toBe(expected);
  });
});

describe('topicMatches', () => {
  const rows: [filter: string, topic: string, matches: boolean, why: string][] = [
    // exact
    ['a/b', 'a/b', true, 'identical'],
    ['a/b', 'a/c', false, 'different level'],
    ['a/b', 'a/b/c', false, 'topic longer'],
    ['a/b/c', 'a/b', false, 'topic shorter'],
    ['A', 'a', false, 'case-sensitive [MQTT-4.7.3-4]'],
    ['a/b', 'a/b/', false, 'a trailing separator is another empty level'],
    // # (multi-level) [MQTT-4.7.1-2]
    ['#', 'a', true, '# matches one level'],
    ['#', 'a/b/c', true, '# matches many levels'],
    ['#', '/', true, '# matches empty levels'],
    ['#', '/a', true, '# matches a leading empty level'],
    ['a/#', 'a', true, 'a/# matches its parent a'],
    ['a/#', 'a/', true, 'a/# matches a/ (an empty child level)'],
    ['a/#', 'a/b/c', true, 'a/# matches descendants'],
    ['a/#', 'ab', false, 'a/# does not match a prefix of a level'],
    ['a/#', 'b/a', false, 'a/# does not match elsewhere'],
    ['sport/tennis/player1/#', 'sport/tennis/player1', true, 'spec example: parent'],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true, 'spec example: child'],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true, 'spec example: grandchild'],
    ['sport/#', 'sport', true, 'spec example: sport/# matches sport'],
    ['a/+/#', 'a/b', true, '+/# after a level matches one more level'],
    ['a/+/#', 'a', false, '+ needs a level to exist'],
    // + (single level) [MQTT-4.7.1-3]
    ['+', 'a', true, '+ matches one level'],
    ['+', 'a/b', false, '+ matches only one level'],
    ['+', '/', false, '"/" has two levels'],
    ['+/+', '/', true, '+/+ matches two empty levels'],
    ['/+', '/', true, '/+ matches an empty second level'],
    ['/+', '/finance', true, 'spec example: /+ matches /finance'],
    ['+', '/finance', false, 'spec example: + does not match /finance'],
    ['+/+', '/finance', true, 'spec example: +/+ matches /finance'],
    ['a/+', 'a/', true, '+ matches an empty level'],
    ['a/+', 'a', false, 'a/+ does not match its parent'],
    ['a/+/c', 'a//c', true, '+ matches an empty middle level'],
    ['a/+/c', 'a/b/c', true, '+ in the middle'],
    ['a/+/c', 'a/b/d', false, 'last level differs'],
    ['sport/tennis/+', 'sport/tennis/player1', true, 'spec example'],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false, 'spec example'],
    ['sport/+', 'sport', false, 'spec example: sport/+ does not match sport'],
    ['sport/+', 'sport/', true, 'spec example: sport/+ matches sport/'],
    ['+/+/+', 'a/b/c', true, 'all single'],
    ['+/+', 'a/b/c', false, 'too few levels'],
    // $ topics [MQTT-4.7.2-1]
    ['#', '$SYS', false, '# does not match a $ topic'],
    ['#', '$SYS/broker/load', false, '# does not match $SYS/...'],
    ['+/x', '$SYS/x', false, '+ does not match a leading $ level'],
    ['+', '$', false, '+ does not match $'],
    ['+/#', '$SYS/x', false, '+/# does not match $SYS'],
    ['$SYS/#', '$SYS/x', true, 'explicit $SYS/# matches'],
    ['$SYS/#', '$SYS', true, '$SYS/# matches its parent'],
    ['$SYS/+', '$SYS/x', true, 'explicit $SYS/+ matches'],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true, 'spec example'],
    ['a/+', 'a/$b', true, 'the rule applies to the first level only'],
    ['a/#', 'a/$b/c', true, 'the rule applies to the first level only (#)'],
    ['/#', '$SYS/x', false, '/# needs an empty first level'],
    ['$share/g/#', '$share/g/x', true, 'an exact filter that looks shared matches literally'],
  ];
  it.each(rows)('"%s" vs "%s" → %s (%s)', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('agrees with matching level by level on split strings, over 20,000 seeded filters and topics with empty levels', () => {
    const reference = (filter: string, topic: string): boolean => {
      if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
      const f = filter.split('/');
      const t = topic.split('/');
      for (let i = 0; i < f.length; i++) {
        if (f[i] === '#') return true;
        if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
      }
      return f.length === t.length;
    };
    let seed = 11;
    const next = (k: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % k;
    const levels = ['', 'a', 'b', 'ab', '$x', 'ünï'];
    const make = (wild: boolean): string => {
      const n = 1 + next(4);
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = wild ? next(8) : 7;
        if (r === 0) out.push('+');
        else if (r === 1 && i === n - 1) out.push('#');
        else out.push(levels[next(levels.length)]!);
      }
      return out.join('/');
    };
    for (let i = 0; i < 20_000; i++) {
      const filter = make(true);
      const topic = make(false);
      expect(topicMatches(filter, topic), `${filter} vs ${topic}`).toBe(reference(filter, topic));
    }
  });
});
