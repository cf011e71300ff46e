/**
 * The upstream client against a real Mosquitto 2.0 over TLS (certificates from openssl at
 * test time), with our fault proxy in between where the link must misbehave. What reached
 * the cloud is checked with an MQTT.js subscriber on the broker's plain listener.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamClient } from '../../src/bridge/upstream-client.js';
import type { UpstreamOptions } from '../../src/bridge/upstream.js';
import { testCerts, CLIENT_CN } from '../helpers/certs.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Mosquitto, Observer, type MosquittoOptions } from '../helpers/mosquitto.js';
import { makeClient, type Recorder } from '../helpers/upstream-harness.js';

const certs = testCerts();
const trusted = (): UpstreamOptions['tls'] => () => ({ ca: certs.pem(certs.ca.crt) });
const withClientCert = (): UpstreamOptions['tls'] => () => ({ ca: certs.pem(certs.ca.crt), cert: certs.pem(certs.client.crt), key: certs.pem(certs.client.key) });

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function broker(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const m = new Mosquitto(options);
  cleanups.push(() => m.dispose());
  await m.start();
  return m;
}

async function observer(m: Mosquitto, filters: string[]): Promise<Observer> {
  const o = await Observer.connect(m, filters);
  cleanups.push(() => o.close());
  return o;
}

async function proxyTo(port: number): Promise<FaultProxy> {
  const p = new FaultProxy(port);
  cleanups.push(() => p.close());
  await p.start();
  return p;
}

async function started(options: Partial<UpstreamOptions> & { url: string }, deps = {}): Promise<{ client: UpstreamClient; rec: Recorder }> {
  const made = makeClient({ tls: trusted(), ...options }, deps);
  cleanups.push(() => made.client.stop());
  await made.client.start(new AbortController().signal);
  return made;
}

/** Publishes ids first..last at the given QoS and waits for every ack. */
async function publishAndAck(client: UpstreamClient, rec: Recorder, qos: 1 | 2, ids: number[]): Promise<void> {
  for (const id of ids) expect(client.publish({ packetId: id, topic: `t/${qos}`, payload: Buffer.from(`m${id}`), qos, retain: false, dup: false })).toBe(true);
  await rec.until(() => ids.every((id) => rec.acks.some(([a]) => a === id)), `acks for ${ids.join(',')}`);
}

describe('UpstreamClient with a real Mosquitto over TLS', () => {
  it.each([4, 5] as const)('connects with MQTT %s, verifying the broker against the CA, and reports each QoS 1 and QoS 2 ack', async (protocolVersion) => {
    const m = await broker();
    const obs = await observer(m, ['t/#']);
    const { client, rec } = await started({ url: m.tlsUrl, protocolVersion });
    await rec.until(() => client.connected, 'the link up');
    // A 3.1.1 broker announces no Receive Maximum: Mosquitto's default is assumed (V311_RECEIVE_MAXIMUM).
    expect(rec.ups[0]).toMatchObject({ sessionPresent: false, receiveMaximum: protocolVersion === 4 ? 20 : 65_535 });
    await publishAndAck(client, rec, 1, [1, 2, 3]);
    await publishAndAck(client, rec, 2, [4, 5]);
    expect(rec.acks.map(([, code]) => code)).toEqual([0, 0, 0, 0, 0]);
    await obs.until((ms) => ms.length === 5, 'five messages at the cloud');
    expect(obs.messages.map((x) => `${x.topic}=${x.payload}`).sort()).toEqual(['t/1=m1', 't/1=m2', 't/1=m3', 't/2=m4', 't/2=m5']);
  });

  it('reports the limits the broker announces in its MQTT 5 CONNACK', async () => {
    const m = await broker({ extra: ['max_inflight_messages 7', 'max_packet_size 4096'] });
    const { client, rec } = await started({ url: m.tlsUrl });
    await rec.until(() => client.connected, 'the link up');
    expect(rec.ups[0]).toMatchObject({ receiveMaximum: 7, maximumPacketSize: 4096, topicAliasMaximum: 10 });
  });

  it('authenticates with a client certificate when the broker requires one (mTLS), the CN as user name', async () => {
    const m = await broker({ requireCertificate: true });
    const { client, rec } = await started({ url: m.tlsUrl, tls: withClientCert() });
    await rec.until(() => client.connected, 'the link up');
    expect(m.log()).toContain(`u'${CLIENT_CN}'`);
  });

  it('says which file to check when the broker requires a client certificate and has none', async () => {
    const m = await broker({ requireCertificate: true });
    const { rec } = await started({ url: m.tlsUrl });
    await rec.until(() => rec.warnings().length > 0, 'a warning');
    expect(rec.warnings()[0]).toMatch(/^broker 127\.0\.0\.1:\d+ refused our client certificate \(\w+\): check bridges\[\]\.cert and bridges\[\]\.key$/);
  });

  it('receives messages on its subscriptions at QoS 0, 1 and 2, once each', async () => {
    const m = await broker();
    const obs = await observer(m, ['unused']);
    const { client, rec } = await started({ url: m.tlsUrl });
    await rec.until(() => client.connected, 'the link up');
    expect(await client.subscribe([{ topic: 'cmd/#', qos: 2 }, { topic: 'cfg/+', qos: 1, noLocal: true }])).toEqual([2, 1]);
    for (const qos of [0, 1, 2] as const) await obs.client.publishAsync(`cmd/q${qos}`, `v${qos}`, { qos });
    await obs.client.publishAsync('cfg/a', 'c', { qos: 2, properties: { userProperties: { id: '42' }, contentType: 'text/plain' } });
    await rec.until(() => rec.messages.length === 4, 'four inbound messages');
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.messages.map((x) => `${x.topic}=${x.payload}@${x.qos}`)).toEqual(['cmd/q0=v0@0', 'cmd/q1=v1@1', 'cmd/q2=v2@2', 'cfg/a=c@1']);
    expect(rec.messages[3]!.properties).toEqual({ userProperties: { id: '42' }, contentType: 'text/plain' });
  });
});

describe('UpstreamClient failures against a real Mosquitto', () => {
  it('logs that the certificate is not trusted when the CA is wrong, and keeps retrying with backoff without flooding the log', async () => {
    const m = await broker();
    const proxy = await proxyTo(m.tlsPort);
    const { client, rec } = await started({ url: `mqtts://127.0.0.1:${proxy.port}`, tls: () => ({ ca: certs.pem(certs.otherCa.crt) }), backoff: { baseMs: 20, capMs: 60 } });
    await rec.until(() => proxy.accepted >= 8, 'eight attempts');
    expect(client.connected).toBe(false);
    // Mosquitto sends the CA along with its certificate: the chain ends in a CA we do not trust.
    expect(rec.warnings()[0]).toMatch(/^TLS certificate of 127\.0\.0\.1 is not trusted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\): check bridges\[\]\.ca$/);
    expect(rec.warnings().length).toBeLessThanOrEqual(3); // identical failures are rate-limited
    // ...but every failed attempt is reported (outpost_bridge_connect_failures_total).
    expect(rec.attemptFailures.length).toBeGreaterThanOrEqual(7);
    expect(rec.attemptFailures[0]).toBe(rec.warnings()[0]);
    expect(rec.downs).toEqual([]); // never up, so never down
  });

  it('logs unusable TLS settings (a key that is not PEM) as a clear error and keeps retrying', async () => {
    const { rec } = await started({ url: 'mqtts://127.0.0.1:1', tls: () => ({ ca: certs.pem(certs.ca.crt), cert: 'not a certificate', key: 'not a key' }) });
    await rec.until(() => rec.logs.filter((l) => l.msg.startsWith('TLS settings')).length >= 2, 'two failed attempts', 2000);
    expect(rec.warnings()[0]).toBe('TLS settings for 127.0.0.1 are unusable (ERR_OSSL_PEM_NO_START_LINE): check bridges[].ca, bridges[].cert and bridges[].key');
  });

  it('logs that the broker certificate has expired', async () => {
    const m = await broker({ serverCert: 'expired' });
    const { rec } = await started({ url: m.tlsUrl });
    await rec.until(() => rec.warnings().length > 0, 'a warning');
    expect(rec.warnings()[0]).toMatch(/^TLS certificate of 127\.0\.0\.1 has expired \(CERT_HAS_EXPIRED\)/);
  });

  // Mosquitto 2.0 answers a wrong password with "not authorized" (0x87 / 5) rather than 0x86 / 4.
  it.each([
    [5, /^connection refused: (bad user name or password \(CONNACK 0x86\)|not authorized \(CONNACK 0x87\)): check bridges\[\]\.username and bridges\[\]\.password/],
    [4, /^connection refused: (bad user name or password \(CONNACK 4\)|not authorized \(CONNACK 5\)): check bridges\[\]\.username and bridges\[\]\.password/],
  ] as const)('logs a refused CONNACK for a wrong password clearly (MQTT %s)', async (protocolVersion, expected) => {
    const m = await broker({ users: { bridge: 'right' } });
    const { client, rec } = await started({ url: m.tlsUrl, protocolVersion, username: 'bridge', password: 'wrong' });
    await rec.until(() => rec.warnings().length > 0, 'a warning');
    expect(rec.warnings()[0]).toMatch(expected);
    expect(client.connected).toBe(false);
  });

  it('connects with the right password', async () => {
    const m = await broker({ users: { bridge: 'right' } });
    const { client, rec } = await started({ url: m.tlsUrl, username: 'bridge', password: 'right' });
    await rec.until(() => client.connected, 'the link up');
  });

  it('reports down and then up again when the remote broker restarts', async () => {
    const m = await broker();
    const { client, rec } = await started({ url: m.tlsUrl });
    await rec.until(() => client.connected, 'the link up');
    await m.restart();
    await rec.until(() => rec.downs.length === 1 && rec.ups.length === 2, 'down then up');
    expect(client.connected).toBe(true);
    await publishAndAck(client, rec, 1, [9]);
  });

  it('gives up an attempt whose TLS handshake never completes after the connect timeout', async () => {
    const m = await broker();
    const proxy = await proxyTo(m.tlsPort);
    proxy.stall();
    const { rec } = await started({ url: `mqtts://127.0.0.1:${proxy.port}`, connectTimeoutMs: 300 });
    await rec.until(() => rec.warnings().length > 0, 'a warning');
    expect(rec.warnings()[0]).toMatch(/^no CONNACK from 127\.0\.0\.1:\d+ within 300 ms \(stuck during the TLS handshake\)/);
  });

  it('detects a stalled (half-open) link within two keepalive intervals and reconnects', async () => {
    const m = await broker();
    const proxy = await proxyTo(m.tlsPort);
    const { client, rec } = await started({ url: `mqtts://127.0.0.1:${proxy.port}`, keepalive: 1, connectTimeoutMs: 500 });
    await rec.until(() => client.connected, 'the link up');
    await new Promise((r) => setTimeout(r, 1200)); // pings flow: the link is healthy
    expect(rec.downs).toEqual([]);
    const t0 = Date.now();
    proxy.stall();
    await rec.until(() => rec.downs.length === 1, 'down', 3000);
    const detected = Date.now() - t0;
    expect(detected).toBeLessThan(2000);
    expect(rec.downs[0]).toMatch(/^nothing from 127\.0\.0\.1:\d+ for 1[5-9]\d\d ms \(keepalive 1 s\): the link is dead/);
    proxy.resume();
    await rec.until(() => rec.ups.length === 2, 'up again');
  });
});

describe('UpstreamClient state topic (Last Will)', () => {
  const will = { topic: 'outpost/site-17/state', payload: Buffer.from('offline'), qos: 1 as const, retain: true };

  it('leaves the broker to publish the will (offline) when the link dies', async () => {
    const m = await broker();
    const obs = await observer(m, [will.topic]);
    const proxy = await proxyTo(m.tlsPort);
    const { client, rec } = await started({ url: `mqtts://127.0.0.1:${proxy.port}`, keepalive: 1, connectTimeoutMs: 500, will });
    await rec.until(() => client.connected, 'the link up');
    client.publishDirect(will.topic, Buffer.from('online'), 1, true);
    await obs.until((ms) => ms.some((x) => x.payload.toString() === 'online'), 'online');
    proxy.stall();
    await rec.until(() => rec.downs.length === 1, 'down');
    proxy.drop();
    await obs.until((ms) => ms.at(-1)?.payload.toString() === 'offline', 'the will');
    proxy.resume();
    await rec.until(() => client.connected, 'up again');
  });

  it('publishes offline (retained) itself on stop and then disconnects normally', async () => {
    const m = await broker();
    const { client, rec } = await started({ url: m.tlsUrl, will });
    await rec.until(() => client.connected, 'the link up');
    client.publishDirect(will.topic, Buffer.from('online'), 1, true);
    await new Promise((r) => setTimeout(r, 50));
    await client.stop();
    await client.stop(); // idempotent
    expect(rec.downs).toEqual(['stopped']);
    const late = await observer(m, [will.topic]); // a retained message is what a late subscriber sees
    await late.until((ms) => ms.length === 1, 'the retained state');
    expect(late.messages[0]).toMatchObject({ retain: true });
    expect(late.messages[0]!.payload.toString()).toBe('offline');
    expect(m.log()).toMatch(/Client site-17 disconnected\./);
  });
});

describe('UpstreamClient throughput and back-pressure', () => {
  it('drains 20k QoS 1 messages over TLS with a window of 100 in well under 10 s', async () => {
    const m = await broker();
    const { client, rec } = await started({ url: m.tlsUrl });
    await rec.until(() => client.connected, 'the link up');
    const total = 20_000;
    const payload = Buffer.alloc(64, 'x');
    let sent = 0;
    let acked = 0;
    const send = (): void => {
      while (sent < total && sent - acked < 100) {
        const id = (sent % 65_000) + 1;
        if (!client.publish({ packetId: id, topic: 'bulk/t', payload, qos: 1, retain: false, dup: false })) return;
        sent++;
      }
    };
    rec.onWritable = send;
    rec.onAck = () => {
      acked++;
      send();
    };
    const t0 = performance.now();
    send();
    await rec.until(() => acked === total, 'every ack', 10_000);
    const ms = performance.now() - t0;
    console.log(`upstream drain: ${total} QoS 1 over TLS, window 100: ${Math.round(ms)} ms, ${Math.round((total / ms) * 1000)} msg/s`);
    expect(ms).toBeLessThan(10_000);
  });

  it('refuses publishes above the high-water mark while the link is stalled and says writable once it drains', async () => {
    const m = await broker();
    const proxy = await proxyTo(m.tlsPort);
    const { client, rec } = await started({ url: `mqtts://127.0.0.1:${proxy.port}` }, { highWaterMark: 64 * 1024 });
    await rec.until(() => client.connected, 'the link up');
    proxy.stall();
    const payload = Buffer.alloc(32 * 1024, 'y');
    let accepted = 0;
    for (let i = 0; i < 2000 && client.publish({ packetId: 0, topic: 'big', payload, qos: 0, retain: false, dup: false }); i++) {
      accepted++;
      await new Promise((r) => setImmediate(r));
    }
    expect(accepted).toBeLessThan(2000);
    expect(rec.writables).toBe(0);
    proxy.resume();
    await rec.until(() => rec.writables === 1, 'writable');
    expect(client.publish({ packetId: 0, topic: 'big', payload, qos: 0, retain: false, dup: false })).toBe(true);
  });

  it('refuses publishes while not connected', async () => {
    const { client } = makeClient({ url: 'mqtts://127.0.0.1:1' });
    expect(client.publish({ packetId: 1, topic: 'a', payload: Buffer.from('x'), qos: 1, retain: false, dup: false })).toBe(false);
    await expect(client.subscribe([{ topic: 'a', qos: 1 }])).rejects.toThrow(/not connected/);
  });
});

describe('UpstreamClient against a broker that closes the link right after CONNACK', () => {
  it('reconnects with a growing delay instead of at the base delay for ever (a 3.1.1 publish over the broker\'s max_packet_size)', async () => {
    const m = await broker({ extra: ['max_packet_size 200'] });
    // random 1: each delay is min(cap, 3 × the last), so the sequence is known.
    const { client, rec } = await started({ url: m.tlsUrl, protocolVersion: 4, backoff: { baseMs: 100, capMs: 2000 } }, { random: () => 1 });
    // Like the forwarder after every reconnect: the same oversized message first; Mosquitto closes the link.
    rec.events.up = (s) => {
      client.publish({ packetId: 1, topic: 't/big', payload: Buffer.alloc(500, 1), qos: 1, retain: false, dup: rec.ups.length > 0 });
      return rec.ups.push(s);
    };
    await rec.until(() => rec.downs.length >= 3, 'three links lost', 8000);
    await client.stop();
    const delays = rec.logs.filter((l) => typeof l.retryInMs === 'number').map((l) => l.retryInMs);
    expect(delays.slice(0, 3)).toEqual([300, 900, 2000]);
  });
});

describe('UpstreamClient with credentials no CONNECT can carry', () => {
  it('fails the attempt with a sentence instead of throwing out of the socket event (which stopped the gateway)', async () => {
    const m = await broker();
    const { rec } = await started({ url: m.tlsUrl, password: 'no-user' });
    await rec.until(() => rec.attemptFailures.length >= 1, 'a failed attempt');
    expect(rec.attemptFailures[0]).toBe(`cannot make a CONNECT for 127.0.0.1:${m.tlsPort}: Username is required to use password: check bridges[].client_id, username and password`);
  });
});

describe('UpstreamClient stop on a dead link', () => {
  it('takes at most the stop grace in all, waiting for acks included, when nothing comes back', async () => {
    const m = await broker();
    const proxy = await proxyTo(m.tlsPort);
    const { client, rec } = await started({ url: `mqtts://127.0.0.1:${proxy.port}` }, { stopGraceMs: 1000 });
    await rec.until(() => client.connected, 'the link up');
    proxy.halfOpenLink();
    expect(client.publish({ packetId: 1, topic: 't/1', payload: Buffer.from('x'), qos: 1, retain: false, dup: false })).toBe(true);
    const t0 = Date.now();
    await client.stop();
    const took = Date.now() - t0;
    // Half the grace waiting for the ack; the close may come sooner than the rest.
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1400);
  });
});
