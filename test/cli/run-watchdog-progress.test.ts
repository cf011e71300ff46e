/**
 * Watchdog pings follow component progress: `outpost run` with a real NOTIFY_SOCKET (a real
 * AF_UNIX datagram socket, the systemd-notify command as the sender) and a real gateway into
 * which a test component is injected (GatewayDeps.probes). While it is stuck the WATCHDOG=1
 * pings stop and /healthz answers 503 naming it; when it turns again the pings resume.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliDeps, type ProcessHooks } from '../../src/cli.js';
import type { ProgressProbe } from '../../src/core/progress.js';
import { Gateway } from '../../src/gateway.js';
import { hasCommand, startNotifyReceiver } from '../helpers/notify-receiver.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-watchdog-progress-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pings = (datagrams: string[]) => datagrams.filter((d) => d === 'WATCHDOG=1').length;

describe('watchdog tied to component progress', () => {
  it('withholds WATCHDOG=1 and reports 503 on /healthz while an injected component is stuck, and resumes when it turns', async () => {
    if (!hasCommand('systemd-notify') || !hasCommand('python3')) {
      throw new Error('this test needs the systemd-notify command and python3: apt-get install systemd python3');
    }
    const rx = await startNotifyReceiver('python3', join(tmp, 'notify.sock'));
    cleanups.push(() => rx.kill());
    const config = join(tmp, 'run.yaml');
    writeFileSync(
      config,
      `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\n` +
        `metrics: { port: 0, stuck_after: 1s }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\n`,
    );
    let waitingSince: number | undefined;
    const probe: ProgressProbe = { name: 'injected forwarder', waitingSince: () => waitingSince };
    let logText = '';
    let onSignal: ((s: string) => void) | undefined;
    const proc: ProcessHooks = {
      onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)),
      onCrash: () => () => undefined,
      exitNow: () => undefined,
    };
    const deps: CliDeps = {
      stdout: () => undefined,
      stderr: () => undefined,
      process: proc,
      logDestination: { write: (s: string) => void (logText += s) },
      env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '400000' }, // a ping every 200 ms
      createGateway: (c, d) => new Gateway(c, { ...d, probes: [probe] }),
    };
    const done = runCli(['run', '--config', config], deps);
    cleanups.push(() => onSignal?.('SIGTERM'));
    await rx.waitFor(/READY=1/, 10_000);
    const metricsPort = (JSON.parse(logText.split('\n').find((l) => l.includes('"metrics listening"'))!) as { address: { port: number } }).address.port;
    const healthz = async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      return { status: res.status, body: (await res.json()) as { components: Record<string, string> } };
    };
    await rx.waitFor(/(WATCHDOG=1[\s\S]*){3}/, 5000);
    expect((await healthz()).status).toBe(200);

    waitingSince = Date.now(); // from now on it has work and does not turn
    await sleep(3000); // past stuck_after (1 s), with room for a ping already on its way (a loaded machine)
    const before = pings(rx.datagrams());
    await sleep(2000); // about 10 ping intervals
    expect(pings(rx.datagrams())).toBe(before);
    const h = await healthz();
    expect(h.status).toBe(503);
    expect(h.body.components['injected forwarder']).toMatch(/^stuck: work waiting and no progress for \d+s$/);
    expect(logText).toContain('no progress in injected forwarder; watchdog pings withheld');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain('outpost_components_stuck 1\n');
    expect(metrics).toMatch(/^outpost_component_stuck_seconds\{component="injected forwarder"\} \d+(\.\d+)?$/m);

    waitingSince = undefined; // it turned
    await rx.waitFor(new RegExp(`(WATCHDOG=1[\\s\\S]*){${before + 2}}`), 5000);
    expect((await healthz()).status).toBe(200);

    onSignal?.('SIGTERM');
    expect(await done).toBe(0);
  }, 30_000);
});
