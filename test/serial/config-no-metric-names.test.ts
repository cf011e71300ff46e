/**
 * A regex device whose pattern has no named group: one problem, at the pattern, saying to add
 * one; not also "has no metric "t"; name one of: " with an empty list under metrics.
 */
import { describe, expect, it } from 'vitest';
import { configProblems } from '../helpers/config-problems.js';

describe('a device map whose driver options name no metric', () => {
  it('is told at its options what to fix, without a metrics problem listing no names', () => {
    const text = [
      'serial:',
      '  devices:',
      '    - id: dht',
      '      port: /dev/ttyAMA0',
      '      driver: regex',
      "      options: { pattern: 'T:\\d+' }",
      '      metrics: { t: { scale: 0.1 } }',
    ].join('\n');
    expect(configProblems(text, 'dht.yaml')).toEqual([
      'dht.yaml:6:27 serial.devices[0].options.pattern: the pattern needs at least one named group, e.g. (?<temp>\\d+), got "T:\\\\d+"',
    ]);
  });
});
