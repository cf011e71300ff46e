/**
 * A bad MQTT-SN predefined topic id is reported with the id that is wrong, not with the
 * topic name under it.
 */
import { describe, expect, it } from 'vitest';
import { configProblems } from '../helpers/config-problems.js';

const problems = (text: string): string[] => configProblems(text);

describe('mqttsn predefined topic ids', () => {
  it('that are not numbers are reported with the id and what an id must be', () => {
    expect(problems('mqttsn:\n  predefined_topics: { abc: "x/y" }\n')).toEqual([
      'c.yaml:2:29 mqttsn.predefined_topics.abc: a predefined topic id is a number from 1 to 65534, got "abc"',
    ]);
  });

  it('out of range, globally or per client, are reported with the id, not the topic name', () => {
    expect(problems('mqttsn:\n  predefined_topics: { 70000: "x/z" }\n  clients:\n    c1:\n      predefined_topics: { 0: "q" }\n')).toEqual([
      'c.yaml:2:22 mqttsn.predefined_topics.70000: a predefined topic id is a number from 1 to 65534, got 70000',
      'c.yaml:5:26 mqttsn.clients.c1.predefined_topics.0: a predefined topic id is a number from 1 to 65534, got 0',
    ]);
  });
});
