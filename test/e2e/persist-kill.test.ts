/**
 * Sessions and retained messages survive kill -9 of the real outpost process (issue 5).
 *
 *   MQTT.js (3.1.1 clean:false, v5 expiry) ─┐ subscribe, go offline
 *   mosquitto_sub -c -i ID -q 1 ────────────┤
 *   MQTT.js publisher: QoS 1 / QoS 2 / retained, every one acknowledged
 *   kill -9 ── wait past a short session expiry ── restart on the same store.dir
 *   subscribers reconnect: every acknowledged message, QoS 2 exactly once; retained all there;
 *   the short-expiry session is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Proc {
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

function track(child: ChildProcess): Proc {
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  return { child, exited, output: () => out };
}

async function until(cond: () => boolean, what: string, ms: number, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; ${detail()}`);
    await sleep(20);
  }
}


async function client(url: string, o: IClientOptions): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, ...o });
  c.on('error', () => undefined);
  cleanups.push(() => void c.end(true));
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** Publishes every payload with up to `window` unacknowledged; resolves with the acknowledged ones. */
async function publishAll(c: MqttClient, topic: string, payloads: string[], qos: 1 | 2, retain = false, window = 32): Promise<string[]> {
  const acked: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < payloads.length) {
        const p = payloads[next++]!;
        await c.publishAsync(retain ? p.split('=')[0]! : topic, retain ? p.split('=')[1]! : p, { qos, retain });
        acked.push(p);
      }
    }),
  );
  return acked;
}

describe('kill -9 of outpost with persistent sessions and retained messages', () => {
  it('gives reconnecting persistent subscribers every acknowledged message and keeps every retained message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-persist-kill-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { file: config, url, port } = await writeProcessConfig(dir, { store: { synchronous: 'full' } });

    let outpost = await OutpostProcess.start(config);
    // Persistent subscribers, then offline.
    const js = await client(url, { clientId: 'js-sub', clean: false, protocolVersion: 4 });
    await js.subscribeAsync('p/#', { qos: 2 });
    await js.endAsync();
    const js5 = await client(url, { clientId: 'js-sub5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    await js5.subscribeAsync('p/#', { qos: 1 });
    await js5.endAsync();
    const short = await client(url, { clientId: 'short', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 1 } });
    await short.subscribeAsync('p/#', { qos: 1 });
    await short.endAsync();
    const subArgs = ['-h', '127.0.0.1', '-p', String(port), '-c', '-i', 'ms-sub', '-q', '1', '-t', 'p/#', '-F', '%t %p'];
    const ms1 = track(spawn('mosquitto_sub', subArgs, { stdio: ['ignore', 'pipe', 'pipe'] }));
    await until(() => /"clientId":"ms-sub".*"msg":"client connected"/.test(outpost.output()), 'mosquitto_sub to connect', 5000, outpost.output);
    process.kill(ms1.child.pid!, 'SIGINT'); // mosquitto_sub sends DISCONNECT and exits
    await ms1.exited;
    await until(() => /"clientId":"ms-sub".*"msg":"client disconnected"/.test(outpost.output()), 'mosquitto_sub to disconnect', 5000, outpost.output);

    const N = 300;
    const pub = await client(url, { clientId: 'pub', clean: true, protocolVersion: 5 });
    const q1 = await publishAll(pub, 'p/q1', Array.from({ length: N }, (_, i) => `one-${i}`), 1);
    const q2 = await publishAll(pub, 'p/q2', Array.from({ length: N }, (_, i) => `two-${i}`), 2);
    const RETAINED = 1000;
    await publishAll(pub, '', Array.from({ length: RETAINED }, (_, i) => `r/${i}=v1-${i}`), 1, true);
    const finalRetained = await publishAll(pub, '', Array.from({ length: RETAINED }, (_, i) => `r/${i}=v2-${i}`), 1, true);
    await publishAll(pub, '', ['r/cleared=x'], 1, true);
    await pub.publishAsync('r/cleared', '', { qos: 1, retain: true });
    expect([q1.length, q2.length, finalRetained.length]).toEqual([N, N, RETAINED]);

    await outpost.crash();
    await sleep(1200); // longer than the short session's expiry of 1 s
    outpost = await OutpostProcess.start(config);
    expect(outpost.output()).toMatch(/"expiredSessions":1.*"msg":"state restored"/);

    // MQTT.js 3.1.1: every message, QoS 2 ones exactly once.
    const got: string[] = [];
    const back = mqtt.connect(url, { clientId: 'js-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => void back.end(true));
    back.on('message', (_t, p) => got.push(p.toString()));
    const present = await new Promise<boolean>((resolve) => back.once('connect', (ack) => resolve(ack.sessionPresent)));
    expect(present).toBe(true);
    await until(() => new Set(got).size >= 2 * N, 'all queued messages at MQTT.js', 15_000, () => `${new Set(got).size} distinct`);
    await sleep(200);
    const twos = got.filter((p) => p.startsWith('two-'));
    expect(new Set(twos).size).toBe(N);
    expect(twos.length).toBe(N);
    expect(new Set(got.filter((p) => p.startsWith('one-')))).toEqual(new Set(q1));

    // MQTT.js v5 session with an expiry.
    const got5 = new Set<string>();
    const back5 = mqtt.connect(url, { clientId: 'js-sub5', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0 });
    cleanups.push(() => void back5.end(true));
    back5.on('message', (_t, p) => got5.add(p.toString()));
    await until(() => got5.size >= 2 * N, 'all queued messages at the v5 client', 15_000, () => `${got5.size}`);

    // mosquitto_sub -c comes back to its queue.
    const ms2 = track(spawn('mosquitto_sub', subArgs, { stdio: ['ignore', 'pipe', 'pipe'] }));
    const msLines = () => new Set(ms2.output().split('\n').filter((l) => l.startsWith('p/')));
    await until(() => msLines().size >= 2 * N, 'all queued messages at mosquitto_sub', 15_000, () => `${msLines().size}: ${ms2.output().slice(-300)}`);
    process.kill(ms2.child.pid!, 'SIGINT');
    await ms2.exited;

    // The session whose expiry passed during the downtime is gone.
    const s = mqtt.connect(url, { clientId: 'short', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 1 }, reconnectPeriod: 0 });
    cleanups.push(() => void s.end(true));
    expect(await new Promise<boolean>((resolve) => s.once('connect', (ack) => resolve(ack.sessionPresent)))).toBe(false);

    // Every retained message with its last value; the cleared one is gone.
    const retained = new Map<string, string>();
    const reader = await client(url, { clientId: 'reader', clean: true, protocolVersion: 4 });
    reader.on('message', (t, p, packet) => packet.retain && retained.set(t, p.toString()));
    await reader.subscribeAsync('r/#', { qos: 1 });
    await until(() => retained.size >= RETAINED, 'all retained messages', 10_000, () => `${retained.size}`);
    await sleep(100);
    expect(retained.size).toBe(RETAINED);
    expect([...retained].every(([t, v]) => v === `v2-${t.slice(2)}`)).toBe(true);

    await outpost.stop();
  }, 90_000);

  it('stops a second outpost on the same store.dir with one sentence naming the directory, bridges or not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-persist-lock-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const write = async (name: string) => (await writeProcessConfig(dir, {}, name)).file;
    const first = await OutpostProcess.start(await write('a.yaml'));
    cleanups.push(() => first.stop()); // also when an assertion below fails
    const second = OutpostProcess.spawn(await write('b.yaml'));
    const code = await new Promise<number | null>((resolve) => second.child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    const fatal = second.output().split('\n').filter((l) => l.includes('already running'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toContain(`another outpost (pid ${first.child.pid}) is already running with store.dir ${join(dir, 'data')}`);
    await first.stop();
  }, 30_000);

  it('publishes after the restart the Will of a persistent client that was connected at the kill and never came back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-will-kill-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { file, url } = await writeProcessConfig(dir, {});
    let outpost = await OutpostProcess.start(file);
    cleanups.push(() => outpost.kill9());
    const will = { topic: 'status/pump-7', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const device = await client(url, { clientId: 'pump-7', clean: false, keepalive: 2, will });
    // Acknowledged once stored, and the session (with its Will) was stored before it.
    await device.publishAsync('status/pump-7', 'online', { qos: 1, retain: true });
    await outpost.crash();
    device.end(true); // the device went down with the gateway and does not come back

    outpost = await OutpostProcess.start(file);
    const dashboard = await client(url, { clientId: 'dashboard', clean: true });
    const seen: string[] = [];
    dashboard.on('message', (t, p) => seen.push(`${t} ${p.toString()}`));
    await dashboard.subscribeAsync('status/#', { qos: 1 });
    // 1.5 × its 2 s keepalive after the restart: the device did not reconnect, so its Will goes out.
    await until(() => seen.includes('status/pump-7 offline'), 'the Will', 10_000, () => seen.join(', '));
    await outpost.stop();
  }, 30_000);

  it('loses no acknowledged message when killed in the middle of a stream of QoS 1 and 2 publishes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-persist-kill-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { file: config, url } = await writeProcessConfig(dir, {
      broker: { max_queued_messages: 100_000 },
      // A wide commit window: an acknowledgement sent before its commit would be lost by the kill.
      store: { synchronous: 'full', commit_window: '100ms' },
    });
    let outpost = await OutpostProcess.start(config);
    const sub = await client(url, { clientId: 'stream-sub', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
    await sub.subscribeAsync('s/#', { qos: 2 });
    await sub.endAsync();

    const acked = new Set<string>();
    const pub = await client(url, { clientId: 'stream-pub', clean: true, protocolVersion: 4 });
    let alive = true;
    pub.once('close', () => (alive = false));
    let n = 0;
    const loops = Array.from({ length: 40 }, async () => {
      while (alive) {
        const i = n++;
        const qos = (i % 2 === 0 ? 1 : 2) as 1 | 2;
        try {
          await pub.publishAsync(`s/${qos}`, `m-${i}`, { qos });
        } catch {
          return;
        }
        acked.add(`m-${i}`);
      }
    });
    await until(() => acked.size >= 300, '300 acknowledged publishes', 15_000);
    await outpost.crash();
    pub.end(true);
    await Promise.all(loops);
    outpost = await OutpostProcess.start(config);

    const got: string[] = [];
    const back = mqtt.connect(url, { clientId: 'stream-sub', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 }, reconnectPeriod: 0 });
    cleanups.push(() => void back.end(true));
    back.on('message', (_t, p) => got.push(p.toString()));
    await until(() => [...acked].every((p) => got.includes(p)), `all ${acked.size} acknowledged messages`, 20_000, () => `${new Set(got).size} distinct arrived`);
    await sleep(200);
    const twos = got.filter((p) => Number(p.slice(2)) % 2 === 1);
    expect(twos.length).toBe(new Set(twos).size); // QoS 2: none twice
    console.log(`kill -9 mid-stream: ${n} sent, ${acked.size} acknowledged, ${new Set(got).size} delivered after the restart (${got.length - new Set(got).size} duplicates)`);
    await outpost.stop();
  }, 90_000);
});
