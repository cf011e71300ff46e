/**
 * Store-and-forward end to end, with real peers: a real Gateway (SQLite outbox, bridge,
 * broker, TCP listener) in this process, local MQTT.js clients, a real Mosquitto as the
 * cloud over (m)TLS, our FaultProxy where the link must misbehave, and MQTT.js observers
 * on the cloud side reading the identity user properties (src/bridge/identity.ts).
 *
 *   MQTT.js ──▶ Gateway :0 ──▶ outbox (SQLite) ──▶ bridge ──(mTLS [▶ FaultProxy])──▶ Mosquitto ──▶ observer
 *
 * Issue 4 ("Store-and-forward"), section "Real peers in tests".
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { mtlsBridge } from '../helpers/bridge-config.js';
import { CloudObserver } from '../helpers/cloud-observer.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Mosquitto, Observer, freePort, type MosquittoOptions } from '../helpers/mosquitto.js';
import { MosquittoSub } from '../helpers/mosquitto-sub.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { localClient, publishAll, sleep, startBridgedGateway, waitFor, type BridgedGateway } from '../helpers/bridge-gateway.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  // Reverse order: clients, then the gateway, then proxies and brokers (killed by pid).
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

async function cloud(options: MosquittoOptions = {}, start = true): Promise<Mosquitto> {
  const m = new Mosquitto({ requireCertificate: true, ...options });
  cleanups.push(() => m.dispose());
  m.plainPort = await freePort();
  m.tlsPort = await freePort();
  if (start) await m.start();
  return m;
}

/** The bridge under test: mTLS with the test CA and client certificate (CN site-17), MQTT 5. */
function bridge(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return mtlsBridge(port, {
    protocol: 5,
    keepalive: '2s',
    connect_timeout: '2s',
    backoff: { base: '100ms', cap: '500ms' },
    state_topic: 'sites/17/state',
    rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, remote_prefix: 'sites/17/' }],
    ...extra,
  });
}

async function gatewayWith(bridges: Record<string, unknown>[], store: Record<string, unknown> = {}): Promise<BridgedGateway> {
  const gw = await startBridgedGateway({ bridges, store });
  cleanups.push(() => gw.dispose());
  return gw;
}

async function client(url: string, clientId: string): Promise<MqttClient> {
  const c = await localClient(url, { clientId });
  cleanups.push(() => c.endAsync(true));
  return c;
}

async function cloudObserver(m: Mosquitto, filters: string[]): Promise<CloudObserver> {
  const o = await CloudObserver.connect(m, filters);
  cleanups.push(() => o.close());
  return o;
}

const payloads = (n: number, tag = 'm'): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${i + 1}`));

describe('bridge to a real Mosquitto over mutual TLS', () => {
  it('delivers 2,000 QoS 1 messages published while the cloud was down, all in order, remapped, with identity properties', async () => {
    const N = 2000;
    // The observer's persistent session is made while the cloud is up, then the cloud goes
    // down for the whole publish: what the bridge delivers on its first connect is queued
    // for the observer even if it reconnects after the bridge.
    const m = await cloud({ persistence: true });
    const obs = await cloudObserver(m, ['sites/17/#']);
    await m.stop();

    const gw = await gatewayWith([bridge(m.tlsPort)]);
    const pub = await client(gw.url, 'boiler-7');
    await publishAll(pub, 'sensors/boiler/temp', payloads(N)); // every PUBACK arrived
    expect(gw.gateway.bridges[0]!.backlog().rows).toBe(N);
    expect(gw.gateway.bridges[0]!.linkState).toBe('down');

    await m.start();
    await obs.until((ms) => ms.filter((x) => x.topic === 'sites/17/sensors/boiler/temp').length >= N, `${N} messages at the cloud`, 20_000);
    const got = obs.messages.filter((x) => x.topic === 'sites/17/sensors/boiler/temp');
    expect(got.map((x) => x.payload.toString())).toEqual(payloads(N).map(String));
    expect(got.map((x) => x.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(new Set(got.map((x) => x.src))).toEqual(new Set(['mqtt:boiler-7']));
    expect(new Set(got.map((x) => x.id)).size).toBe(N);
    await waitFor(() => gw.gateway.bridges[0]!.backlog().rows === 0, 'an empty outbox');
  });
});

describe('bridge through cloud outages and link faults', () => {
  it('keeps per-source order and loses nothing when the cloud is stopped ten times mid-drain; duplicates stay within the inflight window per outage', async () => {
    const N = 5000;
    const CYCLES = 10;
    const INFLIGHT = 100;
    const m = await cloud({ persistence: true });
    const obs = await cloudObserver(m, ['sites/17/#']);
    await m.stop();
    // A drain budget keeps the drain going long enough to be cut ten times: each cycle drains
    // about the bucket refilled while the cloud was down (up to 1 s of the rate) plus the 100
    // waited for. At 1,000 msg/s a slow cloud restart let ten cycles drain all 5,000 before the
    // last one (its wait for 100 more could never end); at 300 they take about 4,000.
    const gw = await gatewayWith([bridge(m.tlsPort, { inflight: INFLIGHT, rate: { msgs_per_sec: 300 } })]);
    const b = gw.gateway.bridges[0]!;
    const [a, c] = [await client(gw.url, 'pump-a'), await client(gw.url, 'pump-b')];
    await Promise.all([publishAll(a, 'sensors/a', payloads(N / 2, 'a')), publishAll(c, 'sensors/b', payloads(N / 2, 'b'))]);
    expect(b.backlog().rows).toBe(N);

    const backlogAtStop: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      await m.start();
      await waitFor(() => b.linkState === 'up', 'the bridge to reconnect', 5000);
      const before = b.backlog().rows;
      await waitFor(() => b.backlog().rows <= before - 100, 'some of the backlog to drain', 5000);
      backlogAtStop.push(b.backlog().rows);
      await m.stop();
      await sleep(50 + ((i * 37) % 200));
    }
    await m.start();
    await obs.until(() => obs.distinctIds() >= N, `${N} distinct messages at the cloud`, 30_000);
    await waitFor(() => b.backlog().rows === 0 && b.backlog().inflight === 0, 'an empty outbox');
    await sleep(200); // late duplicates, if any, are counted too

    const r = obs.analyse();
    console.log(`cloud stopped ${CYCLES}× mid-drain: backlog at each stop ${backlogAtStop.join(',')}; received ${r.received}, distinct ${r.distinct}, bridge duplicates ${r.bridgeDuplicates}, cloud redeliveries ${r.cloudRedeliveries}`);
    expect(backlogAtStop.every((n) => n > 0)).toBe(true);
    expect(r.distinct).toBe(N);
    expect(r.orderViolations).toEqual([]);
    expect(r.maxSeq).toEqual(new Map([['mqtt:pump-a', N / 2], ['mqtt:pump-b', N / 2]]));
    expect(r.bridgeDuplicates).toBeLessThanOrEqual(INFLIGHT * CYCLES);
    expect(b.counters.reconnects).toBeGreaterThanOrEqual(CYCLES);
  }, 60_000);

  it('delivers each message exactly once across six cloud restarts mid-drain when the rule is QoS 2', async () => {
    const N = 3000;
    const m = await cloud({ persistence: true });
    const obs = await cloudObserver(m, ['sites/17/#']);
    await m.stop();
    const rules = [{ pattern: 'sensors/#', direction: 'out', qos: 2, remote_prefix: 'sites/17/' }];
    const gw = await gatewayWith([bridge(m.tlsPort, { rules, rate: { msgs_per_sec: 1000 } })]);
    const b = gw.gateway.bridges[0]!;
    await publishAll(await client(gw.url, 'meter'), 'sensors/meter', payloads(N));
    for (let i = 0; i < 6; i++) {
      await m.start();
      await waitFor(() => b.linkState === 'up', 'the bridge to reconnect');
      const before = b.backlog().rows;
      await waitFor(() => b.backlog().rows <= before - 100, 'some of the backlog to drain');
      await m.stop(); // the cloud keeps our session (persistence), with its QoS 2 state
      await sleep(100);
    }
    await m.start();
    await obs.until(() => obs.distinctIds() >= N, `${N} distinct messages at the cloud`, 20_000);
    await waitFor(() => b.backlog().rows === 0 && b.backlog().inflight === 0, 'an empty outbox');
    await sleep(200);
    const r = obs.analyse();
    expect(r.distinct).toBe(N);
    expect(r.orderViolations).toEqual([]);
    // Resent PUBLISHes carry the same packet id with DUP, a PUBREC'd one only gets its PUBREL:
    // the cloud delivers none of them twice [MQTT-4.3.3].
    expect(r.bridgeDuplicates).toBe(0);
  }, 30_000);

  it('delivers everything in order through 20 link faults (drop, stall, delay, slow, refuse) and detects a stalled link within two keepalives', async () => {
    const m = await cloud();
    const obs = await cloudObserver(m, ['sites/17/#']);
    const proxy = new FaultProxy(m.tlsPort);
    cleanups.push(() => proxy.close());
    await proxy.start();
    const KEEPALIVE_MS = 2000;
    const gw = await gatewayWith([bridge(proxy.port, { keepalive: '2s', connect_timeout: '2s' })]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge to connect');

    // A sensor publishing all along: 20 messages every 50 ms.
    const pub = await client(gw.url, 'flapper');
    let sent = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        await publishAll(pub, 'sensors/flap', payloads(20).map((_, i) => Buffer.from(`f-${sent + i + 1}`)));
        sent += 20;
        await sleep(50);
      }
    })();

    const faults = ['drop', 'stall', 'delay', 'slow', 'refuse', 'drop', 'delay', 'stall', 'slow', 'drop', 'refuse', 'delay', 'slow', 'drop', 'stall', 'refuse', 'delay', 'slow', 'drop', 'drop'] as const;
    const stallDetectMs: number[] = [];
    for (const fault of faults) {
      const arrived = obs.messages.length;
      switch (fault) {
        case 'drop':
          proxy.drop();
          break;
        case 'stall': {
          // Half-open: the sockets stay open and nothing moves. Only the keepalive watchdog can tell.
          const t0 = Date.now();
          proxy.stall();
          await waitFor(() => b.linkState === 'down', 'the bridge to notice the stalled link', 3 * KEEPALIVE_MS);
          stallDetectMs.push(Date.now() - t0);
          break;
        }
        case 'delay':
          proxy.delay(150);
          await sleep(800);
          break;
        case 'slow':
          proxy.slow(16 * 1024);
          await sleep(800);
          break;
        case 'refuse':
          proxy.refuse();
          proxy.drop();
          await sleep(500);
          break;
      }
      proxy.resume();
      await waitFor(() => b.linkState === 'up', `the bridge to reconnect after ${fault}`, 6000);
      // Let some traffic through before the next fault.
      await waitFor(() => obs.messages.length > arrived + 20, `traffic after ${fault}`, 6000);
    }
    publishing = false;
    await publisher;

    await obs.until(() => obs.distinctIds() >= sent, `${sent} distinct messages at the cloud`, 20_000);
    const r = obs.analyse();
    console.log(`20 faults: ${sent} published, ${r.distinct} distinct at the cloud, ${r.bridgeDuplicates} bridge duplicates, stall detected after ${stallDetectMs.join(', ')} ms, ${b.counters.reconnects} reconnects`);
    expect(r.distinct).toBe(sent);
    expect(r.orderViolations).toEqual([]);
    const first = [...new Map(obs.identified().map((x) => [x.id, x.payload.toString()])).values()];
    expect(first).toEqual(Array.from({ length: sent }, (_, i) => `f-${i + 1}`));
    expect(stallDetectMs).toHaveLength(3);
    for (const ms of stallDetectMs) expect(ms).toBeLessThanOrEqual(2 * KEEPALIVE_MS);
    expect(b.counters.reconnects).toBeGreaterThanOrEqual(faults.filter((f) => f === 'drop' || f === 'stall' || f === 'refuse').length);
    expect(r.bridgeDuplicates).toBeLessThanOrEqual(100 * b.counters.reconnects);
  }, 60_000);
});

describe('bridge inbound rules', () => {
  it.each([5, 4] as const)('MQTT %s: brings a cloud publish on an in rule to local subscribers under the local prefix, and never echoes a both-rule message back', async (protocol) => {
    const m = await cloud();
    const cloudSide = await Observer.connect(m, ['sites/17/#']);
    cleanups.push(() => cloudSide.close());
    const gw = await gatewayWith([
      bridge(m.tlsPort, {
        protocol,
        rules: [
          { pattern: 'commands/#', direction: 'in', qos: 1, local_prefix: 'cmd/', remote_prefix: 'sites/17/' },
          { pattern: 'chat/#', direction: 'both', qos: 1, remote_prefix: 'sites/17/' },
        ],
      }),
    ]);
    await waitFor(() => gw.gateway.bridges[0]!.linkState === 'up', 'the bridge to connect');
    const local = await client(gw.url, 'local-app');
    const seen: { topic: string; payload: string }[] = [];
    local.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await local.subscribeAsync(['cmd/#', 'chat/#'], { qos: 1 });
    await sleep(300); // the bridge's inbound SUBSCRIBE is confirmed right after it connects

    // in: sites/17/commands/reboot on the cloud → cmd/commands/reboot locally
    await cloudSide.client.publishAsync('sites/17/commands/reboot', 'now', { qos: 1 });
    await waitFor(() => seen.some((x) => x.topic === 'cmd/commands/reboot'), 'the inbound command locally');
    // both, cloud → local: arrives once, and the cloud sees only the original
    await cloudSide.client.publishAsync('sites/17/chat/from-cloud', 'hello edge', { qos: 1 });
    await waitFor(() => seen.some((x) => x.topic === 'chat/from-cloud'), 'the both-rule message locally');
    // both, local → cloud: arrives once, and local subscribers see only the original
    await local.publishAsync('chat/from-edge', 'hello cloud', { qos: 1 });
    await cloudSide.until((ms) => ms.some((x) => x.topic === 'sites/17/chat/from-edge'), 'the both-rule message at the cloud');
    await sleep(500); // an echo, if there were one, would be back by now

    expect(seen).toEqual([
      { topic: 'cmd/commands/reboot', payload: 'now' },
      { topic: 'chat/from-cloud', payload: 'hello edge' },
      { topic: 'chat/from-edge', payload: 'hello cloud' },
    ]);
    const chat = cloudSide.messages.filter((x) => x.topic.startsWith('sites/17/chat/')).map((x) => `${x.topic}=${x.payload}`);
    expect(chat).toEqual(['sites/17/chat/from-cloud=hello edge', 'sites/17/chat/from-edge=hello cloud']);
    expect(gw.gateway.bridges[0]!.counters.inbound).toBe(2);
  });
});

describe('bridge inbound rules across a config change', () => {
  it.each([5, 4] as const)('MQTT %s: a restart that drops an inbound rule unsubscribes the resumed cloud session from its filter, so the cloud stops sending it', async (protocol) => {
    const m = await cloud();
    const cloudSide = await Observer.connect(m, ['observer/none']);
    cleanups.push(() => cloudSide.close());
    const rule = (name: string) => ({ pattern: `${name}/#`, direction: 'in', qos: 1, remote_prefix: 'sites/17/' });
    const first = await startBridgedGateway({ bridges: [bridge(m.tlsPort, { protocol, rules: [rule('commands'), rule('alerts')] })] });
    const dir = first.dir;
    cleanups.push(() => first.dispose());
    await waitFor(() => first.gateway.bridges[0]!.linkState === 'up', 'the first bridge to connect');
    await sleep(300); // SUBACK for both filters
    await first.stop();

    // The new config has no alerts rule. The cloud session (clean start off) still has the
    // alerts subscription, and queues what is published on it meanwhile.
    await cloudSide.client.publishAsync('sites/17/alerts/queued', 'while away', { qos: 1 });
    const second = await startBridgedGateway({ dir, bridges: [bridge(m.tlsPort, { protocol, rules: [rule('commands')] })] });
    cleanups.push(() => second.dispose());
    const b = second.gateway.bridges[0]!;
    await waitFor(() => second.logs().some((l) => l.msg.startsWith('unsubscribed from remote filters')), 'the UNSUBSCRIBE of the dropped filter');
    const line = second.logs().find((l) => l.msg.startsWith('unsubscribed from remote filters'))!;
    expect(line.filters).toEqual(['sites/17/alerts/#']);
    // What the cloud had queued before the UNSUBSCRIBE still comes, and is dropped, counted.
    await waitFor(() => b.counters.unmatched === 1, 'the queued alert, dropped');

    // From now on the cloud sends nothing on the dropped filter: an alert published before
    // a command would arrive before it (one session, in order), and none does.
    await cloudSide.client.publishAsync('sites/17/alerts/after', 'not wanted', { qos: 1 });
    await cloudSide.client.publishAsync('sites/17/commands/reboot', 'now', { qos: 1 });
    await waitFor(() => b.counters.inbound === 1, 'the command');
    expect(b.counters.unmatched).toBe(1);

    // The next restart with the same rules resumes the session and has nothing to drop.
    await second.stop();
    const third = await startBridgedGateway({ dir, bridges: [bridge(m.tlsPort, { protocol, rules: [rule('commands')] })] });
    cleanups.push(() => third.dispose());
    await waitFor(() => third.gateway.bridges[0]!.linkState === 'up', 'the third bridge to connect');
    await sleep(300);
    expect(third.logs().filter((l) => l.msg.startsWith('unsubscribed'))).toEqual([]);
    await cloudSide.client.publishAsync('sites/17/alerts/later', 'not wanted', { qos: 1 });
    await cloudSide.client.publishAsync('sites/17/commands/stop', 'now', { qos: 1 });
    await waitFor(() => third.gateway.bridges[0]!.counters.inbound === 1, 'the second command');
    expect(third.gateway.bridges[0]!.counters.unmatched).toBe(0);
  });
});

describe('bridge with bad credentials or certificates', () => {
  const cases = [
    { what: 'a broker certificate from an untrusted CA', broker: { serverCert: 'rogue' }, extra: {}, sentence: /^TLS certificate of 127\.0\.0\.1 is not trusted \(\w+\): check bridges\[\]\.ca$/ },
    { what: 'an expired broker certificate', broker: { serverCert: 'expired' }, extra: {}, sentence: /^TLS certificate of 127\.0\.0\.1 has expired \(CERT_HAS_EXPIRED\)/ },
    {
      what: 'a wrong password',
      broker: { requireCertificate: false, users: { 'site-17': 'right' } },
      extra: { cert: undefined, key: undefined, username: 'site-17', password: 'wrong' },
      sentence: /^connection refused: not authorized \(CONNACK 0x87\): check bridges\[\]\.username and bridges\[\]\.password/,
    },
  ] as const;

  it.each(cases)('with $what: starts, serves local clients, logs one clear warning, retries with backoff and keeps the messages', async ({ broker, extra, sentence }) => {
    const m = await cloud(broker as MosquittoOptions);
    const t0 = Date.now();
    const gw = await gatewayWith([bridge(m.tlsPort, extra)]);
    const b = gw.gateway.bridges[0]!;

    // Local clients are served as usual: publish, subscribe, get their PUBACKs.
    const local = await client(gw.url, 'sensor-1');
    const got: string[] = [];
    local.on('message', (_t, p) => got.push(p.toString()));
    await local.subscribeAsync('sensors/#', { qos: 1 });
    await publishAll(local, 'sensors/t', payloads(50));
    await waitFor(() => got.length === 50, 'local delivery');
    await sleep(Math.max(0, 2500 - (Date.now() - t0)));

    const bridgeLines = gw.logs().filter((l) => l.bridge === 'cloud');
    const warns = bridgeLines.filter((l) => l.level === 'warn');
    const attempts = bridgeLines.filter((l) => typeof l.retryInMs === 'number');
    // One sentence an operator can act on; repeats are rate-limited (3 per 5 min) to debug.
    expect([...new Set(warns.map((l) => l.msg))]).toHaveLength(1);
    expect(warns[0]!.msg).toMatch(sentence);
    expect(warns.length).toBeLessThanOrEqual(3);
    // Retrying with backoff (base 100 ms, cap 500 ms): several attempts, each delay in range.
    expect(attempts.length).toBeGreaterThanOrEqual(5);
    for (const l of attempts) {
      expect(l.msg).toBe(warns[0]!.msg);
      expect(l.retryInMs).toBeGreaterThanOrEqual(100);
      expect(l.retryInMs).toBeLessThanOrEqual(500);
    }
    // The broker saw the attempts too.
    expect(m.log().match(/New connection from 127\.0\.0\.1:\d+ on port/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
    expect(b.linkState).toBe('down');
    expect(b.backlog().rows).toBe(50);
  });
});

describe('bridge state topics', () => {
  it('keeps the local state retained (down, up) and the remote state retained (online, offline after a lost link and after a clean stop)', async () => {
    const m = await cloud();
    const proxy = new FaultProxy(m.tlsPort);
    cleanups.push(() => proxy.close());
    await proxy.start();
    proxy.refuse();
    const remote = await Observer.connect(m, ['sites/17/state']);
    cleanups.push(() => remote.close());
    const gw = await gatewayWith([bridge(proxy.port)]);
    const b = gw.gateway.bridges[0]!;
    const STATE = '$SYS/outpost/bridge/cloud/state';

    const local = await client(gw.url, 'dashboard');
    const states: { payload: string; retain: boolean }[] = [];
    local.on('message', (_t, p, packet) => states.push({ payload: p.toString(), retain: packet.retain }));
    await local.subscribeAsync(STATE, { qos: 1 });
    await waitFor(() => states.length === 1, 'the retained local state');
    expect(states[0]).toEqual({ payload: 'down', retain: true });

    proxy.resume();
    await waitFor(() => states.some((s) => s.payload === 'up'), 'local state up');
    await remote.until((ms) => ms.some((x) => x.payload.toString() === 'online'), 'remote state online');
    const late = await localClient(gw.url, { clientId: 'late-dashboard' });
    cleanups.push(() => late.endAsync(true));
    const retained = new Promise<{ payload: string; retain: boolean }>((resolve) => late.once('message', (_t, p, packet) => resolve({ payload: p.toString(), retain: packet.retain })));
    await late.subscribeAsync(STATE, { qos: 1 });
    expect(await retained).toEqual({ payload: 'up', retain: true });

    // The link dies without DISCONNECT: the cloud publishes our will.
    proxy.refuse();
    proxy.drop();
    await remote.until((ms) => ms.at(-1)?.payload.toString() === 'offline', 'remote state offline (will)');
    await waitFor(() => states.at(-1)?.payload === 'down', 'local state down');

    proxy.resume();
    await waitFor(() => b.linkState === 'up', 'the bridge to reconnect', 5000);
    await remote.until((ms) => ms.at(-1)?.payload.toString() === 'online', 'remote state online again');

    // A clean stop says offline itself (the will is discarded by DISCONNECT 0x00).
    await gw.stop();
    await remote.until((ms) => ms.at(-1)?.payload.toString() === 'offline', 'remote state offline after a clean stop');
    const fresh = await Observer.connect(m, ['sites/17/state']);
    cleanups.push(() => fresh.close());
    await fresh.until((ms) => ms.length === 1, 'the retained remote state');
    expect(fresh.messages[0]).toMatchObject({ retain: true });
    expect(fresh.messages[0]!.payload.toString()).toBe('offline');
  });
});

describe('bridge and MQTT 5 User Properties', () => {
  it('forwards a publisher\'s User Properties to the cloud in the order mosquitto_pub sent them, a repeated name and a number-like name included, with the identity properties after them [MQTT-3.3.2-18]', async () => {
    const m = await cloud();
    const sub = new MosquittoSub(m.plainPort, ['sites/17/#'], `props-${process.pid}`, '%P');
    cleanups.push(async () => sub.stop());
    await sleep(300); // mosquitto_sub subscribed
    const gw = await gatewayWith([bridge(m.tlsPort)]);
    await waitFor(() => gw.gateway.bridges[0]!.linkState === 'up', 'the bridge up');
    // Through the outbox: the row's properties are written to SQLite and read back before they go up.
    const pub = await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.port), '-V', '5', '-i', 'boiler-7', '-q', '1', '-t', 'sensors/boiler/temp', '-m', '21.5',
      '-D', 'PUBLISH', 'user-property', 'a', '1', '-D', 'PUBLISH', 'user-property', 'b', '2', '-D', 'PUBLISH', 'user-property', 'a', '3', '-D', 'PUBLISH', 'user-property', '10', 'x'], { timeout: 8000 });
    expect(pub.stderr).toBe('');
    const line = await sub.next('sites/17/sensors/boiler/temp', undefined, 10_000);
    const pairs = line.payload.split(' ');
    expect(pairs.slice(0, 4)).toEqual(['a:1', 'b:2', 'a:3', '10:x']);
    expect(pairs.slice(4).map((p) => p.slice(0, p.indexOf(':')))).toEqual(['outpost-id', 'outpost-src', 'outpost-seq']);
    expect(pairs.slice(5)).toEqual(['outpost-src:mqtt:boiler-7', 'outpost-seq:1']);
  });
});
