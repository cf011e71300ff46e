/**
 * `outpost run` tells systemd where it is: READY=1 after the gateway started (every listener
 * bound), STOPPING=1 before it stops, watchdog from the beginning; once through the injected
 * notifier, once as a real process against a real NOTIFY_SOCKET.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliDeps, type GatewayLike, type NotifierLike, type ProcessHooks } from '../../src/cli.js';
import { hasCommand, startNotifyReceiver, type NotifyReceiver } from '../helpers/notify-receiver.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-run-notify-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const config = join(tmp, 'run.yaml');
writeFileSync(config, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nmetrics: { port: 0 }\nstore: { dir: ${JSON.stringify(join(tmp, 'data'))} }\n`);
const tick = () => new Promise((r) => setTimeout(r, 10));

function fakeRun(startBehaviour: () => Promise<void> = async () => {}) {
  const events: string[] = [];
  let onSignal: ((s: string) => void) | undefined;
  const proc: ProcessHooks = {
    onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)),
    onCrash: () => () => undefined,
    exitNow: (code) => void events.push(`exit ${code}`),
  };
  const gateway: GatewayLike = {
    addresses: [{ type: 'mqtt', host: '127.0.0.1', port: 40_000 }],
    start: async () => {
      events.push('gateway.start');
      await startBehaviour();
    },
    stop: async () => void events.push('gateway.stop'),
  };
  const notifier: NotifierLike = {
    startWatchdog: () => void events.push('watchdog'),
    ready: async (status) => void events.push(`READY ${status}`),
    stopping: async () => void events.push('STOPPING'),
    close: () => void events.push('notifier.close'),
  };
  const deps: CliDeps = {
    stdout: () => undefined,
    stderr: () => undefined,
    process: proc,
    logDestination: { write: () => undefined },
    createGateway: () => gateway,
    createNotifier: () => notifier,
  };
  return { events, deps, signal: (s = 'SIGTERM') => onSignal?.(s) };
}

describe('outpost run and systemd', () => {
  it('starts the watchdog first, says READY once the gateway started and STOPPING before it stops', async () => {
    const r = fakeRun();
    const done = runCli(['run', '--config', config], r.deps);
    await tick();
    r.signal();
    expect(await done).toBe(0);
    expect(r.events).toEqual(['watchdog', 'gateway.start', 'READY listening on mqtt://127.0.0.1:40000', 'STOPPING', 'gateway.stop', 'notifier.close']);
  });

  it('never says READY when the gateway cannot start', async () => {
    const r = fakeRun(async () => {
      throw new Error('port in use');
    });
    expect(await runCli(['run', '--config', config], r.deps)).toBe(1);
    expect(r.events).toEqual(['watchdog', 'gateway.start', 'gateway.stop', 'notifier.close']);
  });

  it.skipIf(!hasCommand('systemd-notify') || !hasCommand('python3'))(
    'as a real process with NOTIFY_SOCKET, sends READY after binding, watchdog pings, and STOPPING on SIGTERM',
    async () => {
      const rx: NotifyReceiver = await startNotifyReceiver('python3', join(tmp, 'notify.sock'));
      cleanups.push(() => rx.kill());
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'run', '--config', config], {
        cwd: repo,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '400000' },
      });
      cleanups.push(() => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await rx.waitFor(/READY=1/, 10_000);
      expect(stdout).toContain('"msg":"gateway started"'); // READY came after the listeners were bound
      const port = (JSON.parse(stdout.split('\n').find((l) => l.includes('gateway started'))!) as { listeners: { port: number }[] }).listeners[0]!.port;
      expect(rx.datagrams()).toContain(`READY=1\nMAINPID=${child.pid}\nSTATUS=listening on mqtt://127.0.0.1:${port}`);
      await rx.waitFor(/(WATCHDOG=1[\s\S]*){3}/, 5000);
      process.kill(child.pid!, 'SIGTERM');
      expect(await exited).toBe(0);
      await rx.waitFor(/STOPPING=1/);
      const states = rx.datagrams().filter((d) => d !== 'BARRIER=1').map((d) => d.split('\n')[0]);
      expect(states.indexOf('STOPPING=1')).toBeGreaterThan(states.indexOf('READY=1'));
    },
  );
});
