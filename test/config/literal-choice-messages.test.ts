/**
 * Keys that take one of a few numbers say which, instead of zod's bare "Invalid input":
 * bridges[].protocol, serial devices' data_bits and stop_bits.
 */
import { describe, expect, it } from 'vitest';
import { configProblems } from '../helpers/config-problems.js';

const problems = (text: string): string[] => configProblems(text);

describe('a number outside a short list of choices', () => {
  it('for a bridge protocol says 4 or 5', () => {
    expect(problems('bridges:\n  - name: c\n    url: mqtt://a:1\n    protocol: 3\n    rules: [{ pattern: "#" }]\n')).toEqual([
      'c.yaml:4:15 bridges[0].protocol: must be 4 (MQTT 3.1.1) or 5, got 3',
    ]);
  });

  it('for data_bits and stop_bits says which values serial lines take', () => {
    expect(problems('serial:\n  devices:\n    - { id: a, port: /dev/ttyUSB0, driver: line-json, data_bits: 9, stop_bits: 3 }\n')).toEqual([
      'c.yaml:3:66 serial.devices[0].data_bits: must be 5, 6, 7 or 8, got 9',
      'c.yaml:3:80 serial.devices[0].stop_bits: must be 1 or 2, got 3',
    ]);
  });
});
