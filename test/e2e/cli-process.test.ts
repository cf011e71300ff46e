/**
 * The real executable: `node --import tsx src/main.ts run --config FILE` as a child
 * process on a real port, driven by a real MQTT.js client and real signals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, within } from '../helpers/gateway-fixture.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-cli-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const children: ChildProcess[] = [];
const clients: MqttClient[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

interface Outpost {
  child: ChildProcess;
  logs(): LogLine[];
  /** Raw stdout lines (JSON log lines). */
  lines(): string[];
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitLog(msg: string, ms?: number): Promise<LogLine>;
}

function outpost(port: number): Outpost {
  const file = join(tmp, `outpost-${port}.yaml`);
  writeFileSync(
    file,
    [
      'listeners:',
      '  - type: mqtt',
      '    host: 127.0.0.1',
      `    port: ${port}`,
      'log: { format: json, level: info }',
      `store: { dir: ${JSON.stringify(join(tmp, `data-${port}`))} }`,
      'metrics: { port: 0 }',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'run', '--config', file], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const lines = () => out.split('\n').filter((l) => l.length > 0);
  const logs = () => lines().map((l) => JSON.parse(l) as LogLine);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    logs,
    lines,
    stderr: () => err,
    exit,
    async waitLog(msg, ms = 10_000) {
      const end = Date.now() + ms;
      for (;;) {
        const found = logs().find((l) => l.msg === msg);
        if (found) return found;
        if (Date.now() > end || child.exitCode !== null) {
          throw new Error(`no "${msg}" log line; stdout: ${out}; stderr: ${err}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

describe('outpost run as a real process', () => {
  it('serves MQTT on the configured port: an MQTT.js client round-trips a message through it', async () => {
    const port = await freePort();
    const p = outpost(port);
    const started = await p.waitLog('gateway started');
    expect(started.listeners).toEqual([{ type: 'mqtt', host: '127.0.0.1', port }]);
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    await c.subscribeAsync('cli/echo', { qos: 1 });
    const got = new Promise<string>((resolve) => c.once('message', (_t, payload) => resolve(payload.toString())));
    await c.publishAsync('cli/echo', 'through the process', { qos: 1 });
    expect(await within(got, 3000, 'the message back')).toBe('through the process');
  });

  it('stops on SIGTERM with exit code 0 within 5 s and a clean "stopped" log, even with a client connected', async () => {
    const port = await freePort();
    const p = outpost(port);
    await p.waitLog('gateway started');
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    const told = new Promise<number | undefined>((resolve) => c.once('disconnect', (packet) => resolve(packet.reasonCode)));
    const sent = Date.now();
    p.child.kill('SIGTERM');
    const { code, signal } = await within(p.exit, 5000, 'outpost to exit after SIGTERM');
    expect(Date.now() - sent).toBeLessThan(5000);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(await within(told, 1000, 'the DISCONNECT')).toBe(0x8b);
    const logs = p.logs();
    expect(logs.map((l) => l.msg)).toContain('stopping');
    expect(logs.at(-1)).toMatchObject({ level: 'info', msg: 'stopped' });
    expect(logs.filter((l) => ['warn', 'error', 'fatal'].includes(l.level) && l.msg !== 'stopping')).toEqual([]);
    expect(p.stderr()).toBe('');
  });

  it('exits 1 with one fatal line naming the port when the port is already in use', async () => {
    const port = await freePort();
    const blocker = createServer();
    servers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    const p = outpost(port);
    const { code } = await within(p.exit, 10_000, 'outpost to exit');
    expect(code).toBe(1);
    const fatal = p.lines().filter((l) => (JSON.parse(l) as LogLine).level === 'fatal');
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toContain(`127.0.0.1:${port}`);
    expect(fatal[0]).toMatch(/already in use/);
    // One clear sentence, not also an error line from the listener (DESIGN §5).
    expect(p.logs().filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
    expect(p.logs().map((l) => l.msg)).not.toContain('gateway started');
  });
});
