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
import { runCli, type ProcessHooks } from '../../src/cli.js';
import { freePort } from '../helpers/mosquitto.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-run-reload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost run and SIGHUP', () => {
  it('reloads on SIGHUP, and /healthz judges a bridge added by the reload against its own caps', async () => {
    const file = join(tmp, 'run.yaml');
    const base = `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\nmetrics: { host: 127.0.0.1, port: 0 }\n`;
    writeFileSync(file, base);
    const lines: Record<string, unknown>[] = [];
    let onSignal: ((s: string) => void) | undefined;
    let onReload: (() => void) | undefined;
    const proc: ProcessHooks = {
      onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)),
      onReload: (fn) => ((onReload = fn), () => (onReload = undefined)),
      onCrash: () => () => undefined,
      exitNow: () => undefined,
    };
    const done = runCli(['run', '--config', file], { stdout: () => undefined, stderr: () => undefined, process: proc, logDestination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
    const waitLog = async (msg: string, n = 1) => {
      for (let i = 0; i < 250; i++) {
        const found = lines.filter((x) => x['msg'] === msg);
        if (found.length >= n) return found[n - 1]!;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no "${msg}" log line: ${JSON.stringify(lines)}`);
    };
    const { address } = (await waitLog('metrics listening')) as unknown as { address: { port: number } };
    const started = (await waitLog('gateway started')) as unknown as { listeners: { port: number }[] };
    const health = async () => (await fetch(`http://127.0.0.1:${address.port}/healthz`)).json() as Promise<{ components: Record<string, string> }>;

    const nowhere = await freePort();
    writeFileSync(file, `${base}bridges:\n  - { name: cloud, url: "mqtt://127.0.0.1:${nowhere}", backoff: { base: 1s, cap: 1s }, rules: [{ pattern: "sensors/#" }], buffer: { max_rows: 2 } }\n`);
    onReload!();
    expect(await waitLog('config reloaded')).toMatchObject({ changes: ['bridge cloud added'], component: 'reload' });
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${started.listeners[0]!.port}`, { reconnectPeriod: 0 });
    await c.publishAsync('sensors/a', '1', { qos: 1 });
    await c.publishAsync('sensors/a', '2', { qos: 1 });
    await c.endAsync();
    expect((await health()).components['bridge cloud']).toBe('down and its outbox is at its cap (rows 2/2)');

    // A file caught empty (an editor or a copy half-way) is refused: the bridge stays.
    writeFileSync(file, '# outpost\n\n');
    onReload!();
    expect(await waitLog(`config not reloaded, the running config stays: ${file}: the config file is empty (saved half-way?); write the whole config, then reload`)).toMatchObject({ component: 'reload' });
    expect((await health()).components['bridge cloud']).toBe('down and its outbox is at its cap (rows 2/2)');

    onSignal!('SIGTERM');
    expect(await done).toBe(0);
    expect(onReload).toBeUndefined();
  });
});
