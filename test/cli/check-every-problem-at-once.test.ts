/**
 * `outpost check` reports every problem in one run: the cross-key checks (a port taken twice,
 * a bridge name or a device id used twice) ran only when nothing else in their part of the
 * file was wrong, so the operator fixed one round, ran check again and met the next.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-every-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, lines: string[]): string {
  const file = join(tmp, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('outpost check with several problems', () => {
  it('reports two listeners on one port together with a wrong log level', async () => {
    const file = write('ports.yaml', [
      'listeners:',
      '  - { type: mqtt, port: 1883 }',
      '  - { type: ws, port: 1883 }',
      '  - { type: mqtx, port: 1884 }',
      'log:',
      '  level: verbose',
    ]);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err.split('\n').filter(Boolean)).toEqual([
      `${file}:3:23 listeners[1].port: port 1883 on 127.0.0.1 is also taken by listeners[0] on 127.0.0.1; give each listener its own port`,
      `${file}:4:13 listeners[2].type: unknown listener type; use one of: mqtt, mqtts, ws, wss, got "mqtx"`,
      `${file}:6:10 log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "verbose"`,
    ]);
  });

  it('reports a bridge name used twice together with a bad rule of another bridge', async () => {
    const file = write('bridges.yaml', [
      'bridges:',
      '  - { name: cloud, url: "mqtts://a.example:8883", rules: [{ pattern: "a/#" }] }',
      '  - { name: cloud, url: "mqtts://b.example:8883", rules: [{ pattern: "b/#" }] }',
      '  - { name: other, url: "mqtts://c.example:8883", rules: [{ pattern: "c/#", qos: 7 }] }',
    ]);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`${file}:3:13 bridges[1].name: bridge name "cloud" is used twice; names must be unique, got "cloud"`);
    expect(result.err).toContain(`${file}:4:82 bridges[2].rules[0].qos: must be 0, 1 or 2, got 7`);
  });

  it('reports a device id used twice and a port shared by two line devices together with an unknown driver', async () => {
    write('devices.yaml', [
      'devices:',
      '  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }',
      '  - { id: boiler, port: /dev/ttyUSB1, driver: line-json }',
      '  - { id: pump, port: /dev/ttyUSB0, driver: line-kv }',
      '  - { id: gps, port: /dev/ttyUSB2, driver: nmea0183 }',
    ]);
    const file = write('outpost.yaml', ['serial:', '  include: [devices.yaml]']);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    const devices = join(tmp, 'devices.yaml');
    expect(result.err).toContain(`${devices}:3:11 devices[1].id: device id "boiler" is used twice; ids must be unique`);
    expect(result.err).toContain(`${devices}:4:23 devices[2].port: port is already used by device "boiler"`);
    expect(result.err).toContain(`${devices}:5:44 devices[3].driver: unknown driver`);
  });
});
