import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { renderJsonSchema, SCHEMA_FILE } from '../../src/config/json-schema.js';
import { defaultConfig, loadConfig } from '../../src/config/load.js';

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const EXAMPLE = root('config/outpost.example.yaml');

/** Every key path of a config object, e.g. ["broker", "max_inflight"]; list items as index 0. */
function keyPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.length > 0 ? keyPaths(value[0], [...prefix, 0]) : [prefix];
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => keyPaths(v, [...prefix, k]));
  }
  return [prefix];
}

describe('config/outpost.schema.json', () => {
  it('is what `npm run schema` generates from the zod schema today', () => {
    expect(readFileSync(root(SCHEMA_FILE), 'utf8'), 'run `npm run schema` and commit the result').toBe(
      renderJsonSchema(),
    );
  });

  it('describes durations and sizes as a number or a string', () => {
    const schema = JSON.parse(renderJsonSchema()) as {
      properties: { broker: { properties: Record<string, { anyOf?: { type: string }[] }> } };
    };
    for (const key of ['connect_timeout', 'max_packet_size', 'max_session_expiry']) {
      const types = schema.properties.broker.properties[key]!.anyOf!.map((s) => s.type);
      expect(types, key).toEqual(['number', 'string']);
    }
  });
});

describe('config/outpost.example.yaml', () => {
  it('points editors at the JSON Schema', () => {
    expect(readFileSync(EXAMPLE, 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\/outpost\.schema\.json$/m);
  });

  it('sets every key, so it documents them all', () => {
    const doc = parseDocument(readFileSync(EXAMPLE, 'utf8'));
    for (const path of keyPaths(defaultConfig())) {
      expect(doc.hasIn(path), path.join('.')).toBe(true);
    }
  });

  it('states the true defaults', () => {
    expect(loadConfig(EXAMPLE)).toEqual(defaultConfig());
  });
});

describe('config/bridge.example.yaml', () => {
  const BRIDGE_EXAMPLE = root('config/bridge.example.yaml');

  it('is a valid configuration', () => {
    expect(() => loadConfig(BRIDGE_EXAMPLE)).not.toThrow();
  });

  it('shows every key a bridge has, so it documents them all', () => {
    const doc = parseDocument(readFileSync(BRIDGE_EXAMPLE, 'utf8'));
    const bridge = loadConfig(BRIDGE_EXAMPLE).bridges[0]!;
    const optionalShownAsComments = new Set(['username', 'password', 'servername']);
    for (const path of keyPaths(bridge)) {
      expect(doc.hasIn(['bridges', 0, ...path]), path.join('.')).toBe(true);
    }
    const text = readFileSync(BRIDGE_EXAMPLE, 'utf8');
    for (const key of optionalShownAsComments) expect(text).toMatch(new RegExp(`# ${key}: `));
  });
});
