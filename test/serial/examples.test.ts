import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import { builtinDrivers } from '../../drivers/index.js';
import { DEVICES_SCHEMA_FILE, renderDevicesJsonSchema } from '../../src/config/devices-json-schema.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

/** Loads a device map file through a config that includes it, as an operator would. */
function loadDevices(file: string) {
  return parseConfigText(`serial:\n  include: [${JSON.stringify(file)}]\n`, root('config/outpost.yaml')).serial.devices;
}

function keyPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.length > 0 ? keyPaths(value[0], [...prefix, 0]) : [prefix];
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => keyPaths(v, [...prefix, k]));
  return [prefix];
}

describe('config/devices.schema.json', () => {
  it('is what `npm run schema` generates from the zod schema today', () => {
    expect(readFileSync(root(DEVICES_SCHEMA_FILE), 'utf8'), 'run `npm run schema` and commit the result').toBe(renderDevicesJsonSchema());
  });

  it("offers each driver's own options for completion", () => {
    const schema = JSON.parse(renderDevicesJsonSchema()) as { properties: { devices: { items: { oneOf?: unknown[]; anyOf?: unknown[] } } } };
    const variants = (schema.properties.devices.items.oneOf ?? schema.properties.devices.items.anyOf)!;
    expect(variants).toHaveLength(builtinDrivers.length);
  });
});

describe('config/devices.example.yaml', () => {
  it('points editors at the device map JSON Schema', () => {
    expect(readFileSync(root('config/devices.example.yaml'), 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\/devices\.schema\.json$/m);
  });

  it('is a valid device map with one device per driver', () => {
    const devices = loadDevices(root('config/devices.example.yaml'));
    expect(new Set(devices.map((d) => d.driver))).toEqual(new Set(builtinDrivers.map((d) => d.name)));
  });

  it('shows every device key on its first device, so it documents them all', () => {
    const doc = parseDocument(readFileSync(root('config/devices.example.yaml'), 'utf8'));
    const first = loadDevices(root('config/devices.example.yaml'))[0]!;
    for (const path of keyPaths(first)) expect(doc.hasIn(['devices', 0, ...path]), path.join('.')).toBe(true);
  });
});

describe('driver folders', () => {
  const folders = readdirSync(root('drivers'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

  it('exist for exactly the listed drivers', () => {
    expect(folders.sort()).toEqual(builtinDrivers.map((d) => d.name).sort());
  });

  for (const name of folders) {
    it(`${name}: has a README with wiring, an example config and a captured sample, and its example loads`, () => {
      const files = readdirSync(root(`drivers/${name}`));
      const readme = readFileSync(root(`drivers/${name}/README.md`), 'utf8');
      expect(readme).toMatch(/## Wiring/);
      expect(readme).toMatch(/## Example/);
      expect(readme).toMatch(/## Captured sample/);
      expect(files.some((f) => f.startsWith('sample.'))).toBe(true);
      const devices = loadDevices(root(`drivers/${name}/example.yaml`));
      expect(devices.length).toBeGreaterThan(0);
      expect(devices.every((d) => d.driver === name)).toBe(true);
    });
  }
});
