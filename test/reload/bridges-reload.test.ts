/**
 * Bridges across a live reload, with a real Gateway (SQLite outbox, broker, TCP listener), a
 * real Mosquitto as the cloud and MQTT.js clients on both sides.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { createRootLogger } from '../../src/observability/logger.js';
import { Reloader } from '../../src/reload/reloader.js';
import { localClient, publishAll, waitFor } from '../helpers/bridge-gateway.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Mosquitto, Observer, freePort } from '../helpers/mosquitto.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

interface Rig {
  gateway: Gateway;
  url: string;
  logs(): { level: string; msg: string; [k: string]: unknown }[];
  reload(bridges: Record<string, unknown>[]): Promise<unknown>;
}

async function gatewayWith(bridges: Record<string, unknown>[]): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bridge-reload-'));
  const config = (list: Record<string, unknown>[]): Config =>
    parseConfigText(JSON.stringify({ listeners: [{ type: 'mqtt', host: '127.0.0.1', port: 0 }], store: { dir: join(dir, 'data') }, bridges: list }), 'reload.yaml');
  const lines: string[] = [];
  const log = createRootLogger({ level: 'info', format: 'json', destination: { write: (l: string) => void lines.push(l) } });
  let next = config(bridges);
  const gateway = new Gateway(next, { log });
  await gateway.start(new AbortController().signal);
  cleanups.push(async () => {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const reloader = new Reloader({ load: () => next, running: next, steps: gateway.reloadSteps(undefined), log });
  reloader.started();
  const { host, port } = gateway.addresses[0]!;
  return {
    gateway,
    url: `mqtt://${host}:${port}`,
    logs: () => lines.map((l) => JSON.parse(l)),
    reload: (list) => ((next = config(list)), reloader.request()),
  };
}

async function cloud(): Promise<Mosquitto> {
  const m = new Mosquitto();
  cleanups.push(() => m.dispose());
  await m.start();
  return m;
}

async function observe(m: Mosquitto, filters: string[]): Promise<Observer> {
  const o = await Observer.connect(m, filters);
  cleanups.push(() => o.close());
  return o;
}

async function client(url: string, clientId: string): Promise<MqttClient> {
  const c = await localClient(url, { clientId });
  cleanups.push(() => c.endAsync(true));
  return c;
}

const bridge = (name: string, url: string, prefix: string) => ({
  name,
  url,
  protocol: 5,
  connect_timeout: '2s',
  backoff: { base: '100ms', cap: '300ms' },
  rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, remote_prefix: prefix }],
});
const payloads = (n: number, tag: string) => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${i + 1}`));

describe('bridges across a live reload', () => {
  it('starts a bridge added by a reload (opening the store then) and it forwards, while the local client stays connected', async () => {
    const m = await cloud();
    const obs = await observe(m, ['site/#']);
    const gw = await gatewayWith([]);
    const pub = await client(gw.url, 'sensor-1');
    let closed = false;
    pub.on('close', () => (closed = true));

    expect(await gw.reload([bridge('cloud', m.plainUrl, 'site/')])).toMatchObject({ status: 'applied', changes: ['bridge cloud added'] });
    await waitFor(() => gw.gateway.bridges[0]?.linkState === 'up', 'the added bridge to connect');
    await publishAll(pub, 'sensors/t', payloads(20, 'a'));
    await obs.until((ms) => ms.filter((x) => x.topic === 'site/sensors/t').length >= 20, '20 messages at the cloud');
    expect(obs.on('site/sensors/t').map((x) => x.payload.toString())).toEqual(payloads(20, 'a').map(String));
    expect(closed).toBe(false);
  });

  it('replaces a changed bridge: its backlog drains, then new messages take the new rules, none is lost in the swap and its counters keep rising', async () => {
    const m = await cloud();
    const obs = await observe(m, ['old/#', 'new/#']);
    const nowhere = `mqtt://127.0.0.1:${await freePort()}`;
    const gw = await gatewayWith([bridge('cloud', nowhere, 'old/')]);
    const pub = await client(gw.url, 'sensor-1');
    await publishAll(pub, 'sensors/t', payloads(200, 'before'));
    expect(gw.gateway.bridges[0]!.backlog().rows).toBe(200);

    // New URL: the backlog (stored under the rules it was accepted with) drains to the cloud.
    const proxy = new FaultProxy(m.plainPort);
    await proxy.start();
    cleanups.push(() => proxy.close());
    expect(await gw.reload([bridge('cloud', `mqtt://127.0.0.1:${proxy.port}`, 'old/')])).toMatchObject({ changes: ['bridge cloud changed (reconnecting with the new settings)'] });
    await obs.until((ms) => ms.length >= 200, 'the backlog at the cloud');
    expect(obs.on('old/sensors/t').map((x) => x.payload.toString())).toEqual(payloads(200, 'before').map(String));
    await waitFor(() => gw.gateway.bridges[0]!.linkState === 'up', 'the bridge up');

    // New rules and URL while the link is up and slow to close (300 ms each way through the
    // proxy): a second publisher keeps going through the swap.
    const during = payloads(2000, 'during');
    const publishing = publishAll(await client(gw.url, 'sensor-2'), 'sensors/u', during, 20);
    await new Promise((r) => setTimeout(r, 20));
    proxy.delay(300);
    expect(await gw.reload([bridge('cloud', m.plainUrl, 'new/')])).toMatchObject({ changes: ['bridge cloud changed (reconnecting with the new settings)'] });
    await publishing;
    await publishAll(pub, 'sensors/t', payloads(50, 'after'));

    await obs.until((ms) => new Set(ms.map((x) => x.payload.toString())).size >= 2250, 'all 2,250 messages at the cloud', 15_000);
    expect(obs.on('new/sensors/t').map((x) => x.payload.toString())).toEqual(payloads(50, 'after').map(String));
    const old = obs.on('old/sensors/u').map((x) => x.payload.toString());
    const renamed = obs.on('new/sensors/u').map((x) => x.payload.toString());
    expect(new Set([...old, ...renamed])).toEqual(new Set(during.map(String)));
    console.log(`swap under load: ${old.length} messages before it under old/, ${renamed.length} under new/`);
    expect(renamed.length).toBeGreaterThan(0);
    await waitFor(() => gw.gateway.bridges[0]!.backlog().rows === 0, 'an empty outbox');
    expect(gw.gateway.bridges).toHaveLength(1);
    // The replacements carried their counts on: the bridge's sent counter covers all 2,250.
    expect(gw.gateway.bridges[0]!.outbound).toBeGreaterThanOrEqual(2250);
  });

  it('stops a removed bridge; its waiting messages stay in the outbox and drain when it is added back', async () => {
    const m = await cloud();
    const obs = await observe(m, ['site/#']);
    const gw = await gatewayWith([bridge('cloud', m.plainUrl, 'site/')]);
    await waitFor(() => gw.gateway.bridges[0]?.linkState === 'up', 'the bridge to connect');
    const pub = await client(gw.url, 'sensor-1');
    await publishAll(pub, 'sensors/t', payloads(5, 'one'));
    await obs.until((ms) => ms.filter((x) => x.topic === 'site/sensors/t').length >= 5, 'the first 5');

    await m.stop(); // so the next messages wait in the outbox
    await waitFor(() => gw.gateway.bridges[0]!.linkState === 'down', 'the bridge to notice');
    await publishAll(pub, 'sensors/t', payloads(10, 'two'));
    expect(await gw.reload([])).toMatchObject({ changes: ['bridge cloud removed (10 messages stay in the outbox)'] });
    expect(gw.gateway.bridges).toEqual([]);
    const sys = await client(gw.url, 'dashboard');
    const retained: string[] = [];
    sys.on('message', (t, payload) => void retained.push(`${t}=${payload.toString()}`));
    await sys.subscribeAsync('$SYS/outpost/bridge/#', { qos: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(retained).toEqual([]); // the removed bridge's retained state is gone
    await m.start();
    const again = await observe(m, ['site/#']); // the first observer went with the cloud
    await publishAll(pub, 'sensors/t', payloads(3, 'unbridged')); // no bridge selects these any more
    await new Promise((r) => setTimeout(r, 500));
    expect(again.on('site/sensors/t')).toEqual([]);

    await gw.reload([bridge('cloud', m.plainUrl, 'site/')]);
    await again.until((ms) => ms.filter((x) => x.topic === 'site/sensors/t').length >= 10, 'the 10 kept messages');
    await new Promise((r) => setTimeout(r, 200));
    expect(again.on('site/sensors/t').map((x) => x.payload.toString())).toEqual(payloads(10, 'two').map(String));
  });

  it('rejects a reload whose new bridge names a CA file that does not exist, and changes nothing', async () => {
    const m = await cloud();
    const gw = await gatewayWith([bridge('cloud', m.plainUrl, 'site/')]);
    const before = gw.gateway.bridges[0];
    const outcome = await gw.reload([bridge('cloud', m.plainUrl, 'site/'), { ...bridge('other', m.plainUrl, 'x/'), ca: '/nonexistent/ca.crt' }]);
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'bridges[1].ca: cannot read /nonexistent/ca.crt (ENOENT); fix the path or its permissions' });
    expect(gw.gateway.bridges).toEqual([before]);
  });
});
