/**
 * `outpost run` in-process with the real gateway: the SIGHUP hook reloads the config file, and
 * what the metrics listener reports follows the reloaded config (a bridge added by a reload
 * is checked against its own outbox caps in /healthz).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/mosquitto.js';
import { runInProcess } from '../helpers/run-in-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-run-reload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost run and SIGHUP', () => {
  it('reloads on SIGHUP, and /healthz judges a bridge added by the reload against its own caps', async () => {
    const file = join(tmp, 'run.yaml');
    const base = `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\nmetrics: { host: 127.0.0.1, port: 0 }\n`;
    writeFileSync(file, base);
    const run = await runInProcess(file);
    const { waitLog } = run;
    const health = async () => (await fetch(`${run.metricsUrl}/healthz`)).json() as Promise<{ components: Record<string, string> }>;

    const nowhere = await freePort();
    writeFileSync(file, `${base}bridges:\n  - { name: cloud, url: "mqtt://127.0.0.1:${nowhere}", backoff: { base: 1s, cap: 1s }, rules: [{ pattern: "sensors/#" }], buffer: { max_rows: 2 } }\n`);
    run.reload();
    expect(await waitLog('config reloaded')).toMatchObject({ changes: ['bridge cloud added'], component: 'reload' });
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${run.listenerPorts[0]!}`, { reconnectPeriod: 0 });
    await c.publishAsync('sensors/a', '1', { qos: 1 });
    await c.publishAsync('sensors/a', '2', { qos: 1 });
    await c.endAsync();
    expect((await health()).components['bridge cloud']).toBe('down and its outbox is at its cap (rows 2/2)');

    // A file caught empty (an editor or a copy half-way) is refused: the bridge stays.
    writeFileSync(file, '# outpost\n\n');
    run.reload();
    expect(await waitLog(`config not reloaded, the running config stays: ${file}: the config file is empty (saved half-way?); write the whole config, then reload`)).toMatchObject({ component: 'reload' });
    expect((await health()).components['bridge cloud']).toBe('down and its outbox is at its cap (rows 2/2)');

    run.signal('SIGTERM');
    expect(await run.done).toBe(0);
    expect(run.reloadHooked).toBe(false);
  });
});
