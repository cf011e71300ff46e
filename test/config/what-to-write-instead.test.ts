/**
 * Problem sentences that say what to write instead: a negative size or duration is told the
 * key's own range in its unit (it was told "must be at least 0", wrong for max_packet_size,
 * 64B at least), a list written as one map is told to start each entry with "- ", and an
 * empty key (a line starting with ": ") is named "" at its own line; a status page history of
 * more samples than the gateway keeps in memory is refused with what to change.
 */
import { describe, expect, it } from 'vitest';
import { configProblems } from '../helpers/config-problems.js';

describe('a negative size or duration', () => {
  it('is told the range of its key in its unit', () => {
    expect(configProblems('broker:\n  max_packet_size: -5\nstore:\n  commit_delay: -1\n')).toEqual([
      'c.yaml:2:20 broker.max_packet_size: must be between 64B and 268435455B, got -5',
      'c.yaml:4:17 store.commit_delay: must be between 0s and 10s, got -1',
    ]);
  });
});

describe('a list written as one map', () => {
  it('is told to start each entry with "- "', () => {
    expect(configProblems('listeners:\n  type: mqtt\n  port: 1883\n')).toEqual(['c.yaml:2:3 listeners: expected a list, got a map; start each entry with "- "']);
  });
});

describe('an empty key', () => {
  it('is shown as "" in the key path', () => {
    expect(configProblems('log:\n  level: info\n: oops\n')).toEqual(['c.yaml:3:1 "": unknown key ""; remove it or use one of: listeners, auth, broker, log, store, bridges, serial, mqttsn, metrics']);
  });
});

describe('a status page history of too many samples', () => {
  it('is refused with the number of samples and what to change', () => {
    expect(configProblems('metrics:\n  status_interval: 1s\n  status_history: 30d\n')).toEqual([
      'c.yaml:3:19 metrics.status_history: keeps 2592000 samples of status_interval in memory, at most 36000; shorten status_history or lengthen status_interval',
    ]);
  });
});
