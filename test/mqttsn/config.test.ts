import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { defaultConfig, loadConfig, parseConfigText } from '../../src/config/load.js';
import { isOutpostError } from '../../src/core/errors.js';

const EXAMPLE = fileURLToPath(new URL('../../config/mqttsn.example.yaml', import.meta.url));

/** Key paths down to scalars; id-keyed maps (predefined_topics, clients) count as one key. */
function keyPaths(value: unknown, prefix: string[] = []): string[][] {
  const leaf = prefix.at(-1) === 'predefined_topics' || prefix.at(-1) === 'clients';
  if (!leaf && value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([k, v]) => keyPaths(v, [...prefix, k]));
  }
  return [prefix];
}

function problems(yaml: string): string {
  try {
    parseConfigText(yaml, 'x.yaml');
    return '';
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
}

describe('mqttsn configuration', () => {
  it('is off when the section is absent', () => {
    expect(defaultConfig().mqttsn).toBeUndefined();
  });

  it('gets every default from an empty section', () => {
    const c = parseConfigText('mqttsn: {}', 'x.yaml').mqttsn!;
    expect(c).toMatchObject({ port: 1885, hosts: ['0.0.0.0', '::'], retry_interval: 10_000, max_retries: 3, max_datagram_size: 4096 });
    expect(c.advertise.interval).toBe(900_000);
  });

  it('config/mqttsn.example.yaml is accepted by loadConfig and shows every key', () => {
    const config = loadConfig(EXAMPLE);
    const doc = parseDocument(readFileSync(EXAMPLE, 'utf8'));
    for (const path of keyPaths(config.mqttsn)) expect(doc.hasIn(['mqttsn', ...path]), path.join('.')).toBe(true);
    expect(config.mqttsn!.predefined_topics).toEqual({ 1: 'sensors/door' });
  });

  it('config/mqttsn.example.yaml states the true defaults for every scalar key', () => {
    const fromExample = loadConfig(EXAMPLE).mqttsn!;
    const defaults = parseConfigText('mqttsn: {}', 'x.yaml').mqttsn!;
    expect({ ...fromExample, predefined_topics: {}, clients: {} }).toEqual(defaults);
  });

  it.each([
    ['predefined id 0', 'mqttsn: { predefined_topics: { 0: a } }', 'mqttsn.predefined_topics.0'],
    ['predefined id 65535', 'mqttsn: { predefined_topics: { 65535: a } }', 'mqttsn.predefined_topics.65535'],
    ['a wildcard predefined topic', 'mqttsn: { predefined_topics: { 1: "a/#" } }', 'wildcard'],
    ['a bad source network', 'mqttsn: { qos_minus_one_sources: [10.0.0.0/33] }', 'qos_minus_one_sources'],
    ['a host name instead of an address', 'mqttsn: { hosts: [localhost] }', 'mqttsn.hosts'],
    ['a typo', 'mqttsn: { prot: 1 }', 'prot'],
  ])('rejects %s with the key named', (_name, yaml, where) => {
    expect(problems(yaml)).toContain(where);
  });
});
