/**
 * A negative number given for a size or a duration is told the key's own range in its unit:
 * it was told "must be at least 0", which for broker.max_packet_size (64B at least) is wrong.
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
