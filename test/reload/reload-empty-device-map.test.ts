/**
 * A device map caught empty by a reload (an editor or `cp` half-way, as for the config file
 * itself) is refused: applying it removed every device it listed, and their retained state
 * and stats were cleared. `devices: []` still says "no devices" on purpose.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/run-in-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-reload-empty-map-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a SIGHUP reload with an empty device map', () => {
  it('keeps the devices running and says which file is empty; devices: [] removes them', async () => {
    const file = join(tmp, 'outpost.yaml');
    const map = join(tmp, 'devices.yaml');
    writeFileSync(file, [
      'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
      'log: { format: json }',
      `store: { dir: ${JSON.stringify(join(tmp, 'data'))} }`,
      'metrics: { host: 127.0.0.1, port: 0 }',
      'serial: { include: [devices.yaml] }',
      '',
    ].join('\n'));
    // A port that does not exist: the device is there, offline, reopened with backoff.
    writeFileSync(map, `devices:\n  - { id: boiler, port: ${JSON.stringify(join(tmp, 'no-such-tty'))}, driver: line-json }\n`);
    const run = await runInProcess(file);
    const { waitLog } = run;
    const devices = async () => ((await (await fetch(`${run.metricsUrl}/status.json`)).json()) as { devices: { id: string }[] }).devices.map((d) => d.id);
    expect(await devices()).toEqual(['boiler']);

    for (const [n, caught] of ['', '# boiler room\n\n', 'devices:\n'].entries()) {
      writeFileSync(map, caught);
      run.reload();
      const line = await waitLog((m) => m.startsWith('config not reloaded'), n + 1);
      expect(line['msg']).toBe(`config not reloaded, the running config stays: ${file}:5:21 serial.include[0]: device map file ${map} is empty (saved half-way?); write its devices, then reload (devices: [] for none)`);
      expect(await devices()).toEqual(['boiler']);
    }

    writeFileSync(map, 'devices: []\n');
    run.reload();
    expect(await waitLog((m) => m === 'config reloaded')).toMatchObject({ changes: ['serial device boiler removed'] });
    expect(await devices()).toEqual([]);

    run.signal('SIGTERM');
    expect(await run.done).toBe(0);
  });
});
