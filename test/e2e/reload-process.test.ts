/**
 * Live reload of the real executable: `node --import tsx src/main.ts run --config FILE` as a
 * child process, the config file rewritten and SIGHUP sent by pid, with real peers: MQTT.js
 * clients, a real Mosquitto as the cloud over mutual TLS, a socat pty as a serial device and a
 * python3 AF_UNIX datagram socket as systemd's NOTIFY_SOCKET.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { freePort, within } from '../helpers/gateway-fixture.js';
import { Mosquitto, Observer } from '../helpers/mosquitto.js';
import { startNotifyReceiver } from '../helpers/notify-receiver.js';
import { PtyLab } from '../helpers/pty.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-reload-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

interface Outpost {
  child: ChildProcess;
  file: string;
  logs(): LogLine[];
  waitLog(pred: (l: LogLine) => boolean, what: string, ms?: number): Promise<LogLine>;
  /** Writes the config file and sends SIGHUP; resolves with the reload's last log line. */
  reload(yaml: string): Promise<LogLine>;
}

function configYaml(port: number, extra: string[] = [], data = port): string {
  return [
    'listeners:',
    '  - type: mqtt',
    '    host: 127.0.0.1',
    `    port: ${port}`,
    'log: { format: json, level: info }',
    `store: { dir: ${JSON.stringify(join(tmp, `data-${data}`))} }`,
    'metrics: { enabled: false }',
    ...extra,
    '',
  ].join('\n');
}

async function outpost(port: number, yaml: string, env: Record<string, string> = {}): Promise<Outpost> {
  const file = join(tmp, `outpost-${port}.yaml`);
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'run', '--config', file], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  cleanups.push(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const logs = () => out.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as LogLine);
  const waitLog = async (pred: (l: LogLine) => boolean, what: string, ms = 10_000, from = 0) => {
    const end = Date.now() + ms;
    for (;;) {
      const found = logs().slice(from).find(pred);
      if (found) return found;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`no log line for ${what}; stdout: ${out}; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitLog((l) => l.msg === 'gateway started', 'the start', 20_000);
  return {
    child,
    file,
    logs,
    waitLog,
    async reload(text) {
      const from = logs().length;
      writeFileSync(file, text);
      process.kill(child.pid!, 'SIGHUP');
      return waitLog((l) => /^config (reloaded|not reloaded)/.test(l.msg), 'the end of the reload', 15_000, from);
    },
  };
}

async function localClient(port: number, clientId: string): Promise<MqttClient & { closes: number }> {
  const c = (await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, protocolVersion: 5, reconnectPeriod: 0 })) as MqttClient & { closes: number };
  c.closes = 0;
  c.on('close', () => c.closes++);
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** A round trip through the gateway on one client: it is connected and the broker serves it. */
async function roundTrip(c: MqttClient, topic: string): Promise<void> {
  await c.subscribeAsync(topic, { qos: 1 });
  const got = new Promise<void>((resolve) => {
    const on = (t: string) => {
      if (t !== topic) return;
      c.off('message', on);
      resolve();
    };
    c.on('message', on);
  });
  await c.publishAsync(topic, 'ping', { qos: 1 });
  await within(got, 3000, `the message back on ${topic}`);
}

const certs = testCerts();

describe('outpost reloads its config on SIGHUP (real process)', () => {
  it('adds a TLS bridge that forwards to a real Mosquitto, then removes it, while a local client stays connected; RELOADING=1 then READY=1', async () => {
    const cloud = new Mosquitto({ requireCertificate: true });
    cleanups.push(() => cloud.dispose());
    await cloud.start();
    const obs = await Observer.connect(cloud, ['sites/17/#']);
    cleanups.push(() => obs.close());
    const rx = await startNotifyReceiver('python3', join(tmp, 'notify.sock'));
    cleanups.push(() => rx.kill());

    const port = await freePort();
    const p = await outpost(port, configYaml(port), { NOTIFY_SOCKET: rx.path });
    await rx.waitFor(/READY=1/, 10_000);
    const c = await localClient(port, 'dashboard');

    const bridge = [
      'bridges:',
      '  - name: cloud',
      `    url: ${cloud.tlsUrl}`,
      '    client_id: site-17',
      `    ca: ${certs.ca.crt}`,
      `    cert: ${certs.client.crt}`,
      `    key: ${certs.client.key}`,
      '    backoff: { base: 100ms, cap: 500ms }',
      '    rules: [{ pattern: "sensors/#", remote_prefix: "sites/17/" }]',
    ];
    const added = await p.reload(configYaml(port, bridge));
    expect(added).toMatchObject({ msg: 'config reloaded', changes: ['bridge cloud added'] });
    await p.waitLog((l) => l.msg === 'bridge up', 'the bridge to connect');
    await c.publishAsync('sensors/boiler/temp', '21.5', { qos: 1 });
    await obs.until((ms) => ms.some((m) => m.topic === 'sites/17/sensors/boiler/temp'), 'the message at the cloud');

    const removed = await p.reload(configYaml(port));
    expect(removed).toMatchObject({ msg: 'config reloaded', changes: ['bridge cloud removed'] });
    await c.publishAsync('sensors/boiler/temp', '22.0', { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect(obs.on('sites/17/sensors/boiler/temp').map((m) => m.payload.toString())).toEqual(['21.5']);

    await roundTrip(c, 'dash/echo');
    expect(c.closes).toBe(0);
    const states = rx.datagrams().filter((d) => d !== 'BARRIER=1').map((d) => d.split('\n')[0]);
    expect(states.filter((s) => s === 'RELOADING=1' || s === 'READY=1')).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1']);
  }, 60_000);

  it('starts a serial device added by a reload on a socat pty, and it publishes', async () => {
    const lab = new PtyLab();
    cleanups.push(() => lab.cleanup());
    const pty = await lab.pty('boiler');
    const port = await freePort();
    const p = await outpost(port, configYaml(port));
    const c = await localClient(port, 'dashboard');
    await c.subscribeAsync('sensors/boiler/#', { qos: 0 });
    const got = new Promise<string>((resolve) => c.once('message', (_t, payload) => resolve(payload.toString())));

    const added = await p.reload(configYaml(port, ['serial:', '  reopen: { base: 100ms, cap: 200ms }', '  devices:', `    - { id: boiler, port: ${JSON.stringify(pty.path)}, driver: line-json }`]));
    expect(added).toMatchObject({ msg: 'config reloaded', changes: ['serial device boiler added'] });
    // The port opens in the background: the device keeps talking until a reading arrives.
    let value: string | undefined;
    void got.then((v) => (value = v));
    for (let i = 0; i < 100 && value === undefined; i++) {
      await pty.write('{"temp":21}\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(JSON.parse(value!)).toMatchObject({ value: 21 });
    expect(c.closes).toBe(0);
  }, 60_000);

  it('keeps running the old config when the new file is broken (logging FILE:LINE:COL), and reports a restart-only change', async () => {
    const port = await freePort();
    const p = await outpost(port, configYaml(port));
    const c = await localClient(port, 'dashboard');

    const broken = await p.reload(configYaml(port, ['serial:', '  max_pending: lots']));
    expect(broken.level).toBe('error');
    expect(broken.msg).toBe(`config not reloaded, the running config stays: ${p.file}:9:16 serial.max_pending: expected a number, got "lots"`);
    await roundTrip(c, 'still/here');
    // A bad device map file is named at its own FILE:LINE:COL.
    writeFileSync(join(tmp, `devices-${port}.yaml`), 'devices:\n  - { id: x, port: /dev/ttyUSB9, driver: nosuch }\n');
    const badMap = await p.reload(configYaml(port, ['serial:', `  include: [devices-${port}.yaml]`]));
    expect(badMap.msg.startsWith(`config not reloaded, the running config stays: ${join(tmp, `devices-${port}.yaml`)}:2:`)).toBe(true);
    expect(badMap.msg).toMatch(/ devices\[0\]\.driver: unknown driver/);

    const other = await freePort();
    const restart = await p.reload(configYaml(other, [], port));
    expect(restart.msg).toBe('config reloaded, nothing to apply');
    expect(p.logs().filter((l) => l.level === 'warn').map((l) => [l.msg, l['setting']])).toEqual([
      ['listeners changed: needs a restart (systemctl restart outpost); keeping the running value', 'listeners'],
    ]);
    await roundTrip(c, 'still/here/2');
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${other}`, { reconnectPeriod: 0, connectTimeout: 1000 })).rejects.toThrow();
    expect(c.closes).toBe(0);

    // The service stops cleanly afterwards.
    const exited = new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
    process.kill(p.child.pid!, 'SIGTERM');
    expect(await within(exited, 10_000, 'the exit')).toBe(0);
  }, 60_000);
});
