/**
 * The upstream client's protocol and timing rules, against a scripted broker on 127.0.0.1
 * (RawClient on the accepted socket) with a FakeClock: keepalive, connect timeout, backoff,
 * QoS 2 in both directions across reconnects, refusals, log rate limiting, stop.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamClient } from '../../src/bridge/upstream-client.js';
import type { UpstreamOptions } from '../../src/bridge/upstream.js';
import { PacketIds } from '../../src/bridge/upstream-ids.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RawClient } from '../helpers/raw-client.js';
import { makeClient, type Recorder } from '../helpers/upstream-harness.js';

/** A broker that does only what the test tells it: each accepted socket is a RawClient. */
class ScriptedBroker {
  port = 0;
  private readonly server: Server;
  private readonly accepted: RawClient[] = [];
  private waiting: ((p: RawClient) => void)[] = [];
  count = 0;
  /** The CONNECT of each connection, in order. */
  readonly connects: Record<string, unknown>[] = [];

  constructor(private readonly version: 4 | 5) {
    this.server = createServer((socket) => {
      this.count++;
      const peer = new RawClient(socket, this.version);
      const w = this.waiting.shift();
      if (w !== undefined) w(peer);
      else this.accepted.push(peer);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The next connection, with its CONNECT read. */
  async next(): Promise<RawClient> {
    const peer = this.accepted.shift() ?? (await new Promise<RawClient>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no connection')), 2000);
      this.waiting.push((p) => {
        clearTimeout(t);
        resolve(p);
      });
    }));
    this.connects.push((await peer.next('connect')) as unknown as Record<string, unknown>);
    return peer;
  }

  /** The next connection, answered with CONNACK 0. */
  async accept(connack: Record<string, unknown> = {}): Promise<RawClient> {
    const peer = await this.next();
    peer.send({ cmd: 'connack', sessionPresent: false, returnCode: 0, reasonCode: 0, ...connack } as never);
    return peer;
  }

  close(): Promise<void> {
    for (const p of this.accepted) p.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function setup(version: 4 | 5, options: Partial<UpstreamOptions> = {}): Promise<{ broker: ScriptedBroker; client: UpstreamClient; rec: Recorder; clock: FakeClock }> {
  const broker = new ScriptedBroker(version);
  await broker.start();
  cleanups.push(() => broker.close());
  const clock = new FakeClock();
  const { client, rec } = makeClient(
    { url: `mqtt://127.0.0.1:${broker.port}`, protocolVersion: version, keepalive: 4, connectTimeoutMs: 5000, backoff: { baseMs: 1000, capMs: 8000 }, ...options },
    { clock, random: () => 0, stopGraceMs: 100 },
  );
  cleanups.push(async () => {
    const stopping = client.stop();
    clock.advance(100);
    await stopping;
  });
  await client.start(new AbortController().signal);
  return { broker, client, rec, clock };
}

const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pub = (packetId: number, qos: 0 | 1 | 2, size = 3, dup = false) => ({ packetId, topic: 't', payload: Buffer.alloc(size, 'p'), qos, retain: false, dup });

describe('keepalive and timeouts', () => {
  it('sends PINGREQ after ¾ keepalive without traffic and closes the link after 1.5 keepalive of silence', async () => {
    const { broker, rec, clock } = await setup(4);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    clock.advance(2999);
    expect(await peer.settle(50)).toEqual([]);
    clock.advance(1);
    await peer.next('pingreq');
    clock.advance(2999); // 5999 ms without a byte from the broker
    await tick();
    expect(rec.downs).toEqual([]);
    clock.advance(1);
    await rec.until(() => rec.downs.length === 1, 'down');
    expect(rec.downs[0]).toMatch(/^nothing from 127\.0\.0\.1:\d+ for 6000 ms \(keepalive 4 s\): the link is dead, reconnecting$/);
    await peer.waitClosed();
  });

  it('keeps a link whose broker answers the pings', async () => {
    const { broker, rec, clock } = await setup(4);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    for (let i = 0; i < 5; i++) {
      clock.advance(3000);
      await peer.next('pingreq');
      peer.send({ cmd: 'pingresp' });
      await tick();
    }
    expect(rec.downs).toEqual([]);
  });

  it("uses the broker's Server Keep Alive instead of its own", async () => {
    const { broker, rec, clock } = await setup(5, { keepalive: 60 });
    const peer = await broker.accept({ properties: { serverKeepAlive: 2 } });
    await rec.until(() => rec.ups.length === 1, 'up');
    clock.advance(1500);
    await peer.next('pingreq');
  });

  it('abandons an attempt without CONNACK after the connect timeout, says so, and retries after the backoff delay', async () => {
    const { broker, rec, clock } = await setup(4);
    await broker.next(); // never answered
    clock.advance(5000);
    await rec.until(() => rec.warnings().length === 1, 'a warning');
    expect(rec.warnings()[0]).toMatch(/^no CONNACK from 127\.0\.0\.1:\d+ within 5000 ms \(stuck before CONNACK\)/);
    expect(rec.logs.at(-1)).toMatchObject({ retryInMs: 1000, attempt: 1 });
    await tick(50);
    expect(broker.count).toBe(1);
    clock.advance(1000);
    await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
  });
});

describe('QoS 2 across reconnects', () => {
  it('delivers an inbound QoS 2 message once when the broker sends it again before PUBREL', async () => {
    const { broker, rec } = await setup(5);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    const msg = { cmd: 'publish', topic: 'in/x', payload: Buffer.from('once'), qos: 2, messageId: 7, retain: false, dup: false } as const;
    peer.send(msg);
    await peer.next('pubrec');
    peer.send({ ...msg, dup: true });
    await peer.next('pubrec');
    peer.send({ cmd: 'pubrel', messageId: 7 });
    await peer.next('pubcomp');
    expect(rec.messages.map((m) => m.payload.toString())).toEqual(['once']);
    peer.send({ ...msg, payload: Buffer.from('a new one') }); // the id is free again after PUBREL
    await peer.next('pubrec');
    expect(rec.messages).toHaveLength(2);
  });

  it.each([
    [true, 'pubrel'],
    [false, 'publish'],
  ] as const)('resends a QoS 2 publish whose PUBREC arrived as PUBREL when the session was kept (session present %s → %s)', async (sessionPresent, expected) => {
    const { broker, client, rec, clock } = await setup(5);
    const first = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    expect(client.publish(pub(3, 2))).toBe(true);
    await first.next('publish');
    first.send({ cmd: 'pubrec', messageId: 3 });
    await first.next('pubrel');
    first.destroy(); // PUBCOMP never comes
    await rec.until(() => rec.downs.length === 1, 'down');
    clock.advance(1000);
    const second = await broker.accept({ sessionPresent });
    await rec.until(() => rec.ups.length === 2, 'up again');
    expect(client.publish(pub(3, 2, 3, true))).toBe(true);
    const p = await Promise.race([second.next('pubrel', 500), second.next('publish', 500)]);
    expect(p.cmd).toBe(expected);
  });

  it('reports a PUBREC with a refusal reason code as the final ack, without PUBREL', async () => {
    const { broker, client, rec } = await setup(5);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    client.publish(pub(9, 2));
    await peer.next('publish');
    peer.send({ cmd: 'pubrec', messageId: 9, reasonCode: 0x87 });
    await rec.until(() => rec.acks.length === 1, 'the ack');
    expect(rec.acks).toEqual([[9, 0x87]]);
    expect(await peer.settle(50)).toEqual([]);
  });
});

/** The next attempt closed by the broker after its CONNECT, before CONNACK; then its retry is due. */
async function closeBeforeConnack(broker: ScriptedBroker, rec: Recorder, clock: FakeClock): Promise<void> {
  const failures = rec.attemptFailures.length;
  const next = broker.next();
  if (failures === 1) {
    // After the first close, one CONNECT goes header first and its body 500 ms later (connect-shape.ts).
    await rec.until(() => clock.pending === 2, 'the CONNECT body held back');
    clock.advance(500);
  }
  (await next).destroy();
  await rec.until(() => rec.attemptFailures.length === failures + 1 && clock.pending === 1, 'the failure and its retry timer');
  clock.advance(1000); // random 0: every delay is the base
}

describe('refusals and remote disconnects', () => {
  it("reports a publish larger than the broker's Maximum Packet Size as refused (0x95) without sending it", async () => {
    const { broker, client, rec } = await setup(5);
    const peer = await broker.accept({ properties: { maximumPacketSize: 100 } });
    await rec.until(() => rec.ups.length === 1, 'up');
    expect(client.publish(pub(1, 1, 200))).toBe(true);
    await rec.until(() => rec.acks.length === 1, 'the refusal');
    expect(rec.acks).toEqual([[1, 0x95]]);
    expect(await peer.settle(50)).toEqual([]);
  });

  it("goes down with the broker's DISCONNECT reason", async () => {
    const { broker, rec } = await setup(5);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    peer.send({ cmd: 'disconnect', reasonCode: 0x8e });
    await rec.until(() => rec.downs.length === 1, 'down');
    expect(rec.downs[0]).toBe(
      'broker disconnected us: session taken over (DISCONNECT 0x8e): another client may be using our client id "site-17" (a broker keeps only the newest connection of an id): check bridges[].client_id',
    );
  });

  it('sends the retained Will without the flag after three closes before CONNACK from a 3.1.1 broker, for that link only: the next link tries the flag again', async () => {
    const will = { topic: 'site/state', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const { broker, rec, clock } = await setup(4, { will });
    for (let i = 0; i < 3; i++) await closeBeforeConnack(broker, rec, clock);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    peer.destroy(); // a flaky uplink, not the broker refusing the retained Will
    await rec.until(() => rec.downs.length === 1 && clock.pending === 1, 'the link down and its retry timer');
    clock.advance(1000);
    await broker.accept();
    await rec.until(() => rec.ups.length === 2, 'up again');
    const willRetain = broker.connects.map((c) => (c.will as { retain: boolean }).retain);
    expect(willRetain).toEqual([true, true, true, false, true]);
  });

  it('sends the Will at QoS 0 after six closes before CONNACK from a 3.1.1 broker, for that link only: a flaky uplink does not leave the bridge at QoS 0 for the rest of the run', async () => {
    const will = { topic: 'site/state', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const { broker, rec, clock } = await setup(4, { will });
    for (let i = 0; i < 6; i++) await closeBeforeConnack(broker, rec, clock);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    peer.destroy(); // a flaky uplink (a load balancer with its broker away), not max_qos 0
    await rec.until(() => rec.downs.length === 1 && clock.pending === 1, 'the link down and its retry timer');
    clock.advance(1000);
    await broker.accept();
    await rec.until(() => rec.ups.length === 2, 'up again');
    const wills = broker.connects.map((c) => {
      const w = c.will as { retain: boolean; qos: number };
      return `${w.qos}${w.retain ? 'r' : ''}`;
    });
    expect(wills).toEqual(['1r', '1r', '1r', '1', '1', '1', '0r', '1r']);
  });

  it('logs at most three identical failures per five minutes, then one line with the number suppressed', async () => {
    const { broker, rec, clock } = await setup(4, { connectTimeoutMs: 1e9 });
    for (let i = 0; i < 10; i++) {
      const peer = await broker.next();
      peer.send({ cmd: 'connack', sessionPresent: false, returnCode: 4 });
      await peer.waitClosed();
      await rec.until(() => clock.pending === 1, 'the retry timer');
      clock.advance(1000); // random 0: every delay is the base
    }
    expect(rec.warnings()).toEqual(Array(3).fill('connection refused: bad user name or password (CONNACK 4): check bridges[].username and bridges[].password'));
    clock.advance(300_000);
    const peer = await broker.next();
    peer.send({ cmd: 'connack', sessionPresent: false, returnCode: 4 });
    await rec.until(() => rec.warnings().length === 4, 'the fourth warning');
    expect(rec.logs.filter((l) => l.level === 40).at(-1)).toMatchObject({ suppressed: 7 });
  });
});

describe('lifecycle', () => {
  it('stops idempotently and leaves no timer behind, whether up or waiting to retry', async () => {
    const { broker, client, rec, clock } = await setup(4);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    const stopping = client.stop();
    expect(client.stop()).toBe(stopping);
    await peer.next('disconnect');
    await stopping;
    expect(clock.pending).toBe(0);
    expect(rec.downs).toEqual(['stopped']);

    const other = await setup(4, { url: 'mqtt://127.0.0.1:1' }); // refused: waits to retry
    await other.rec.until(() => other.rec.warnings().length === 1, 'a failure');
    expect(other.clock.pending).toBe(1);
    await other.client.stop();
    expect(other.clock.pending).toBe(0);
  });

  it('stops when the start signal is aborted', async () => {
    const broker = new ScriptedBroker(4);
    await broker.start();
    cleanups.push(() => broker.close());
    const { client, rec } = makeClient({ url: `mqtt://127.0.0.1:${broker.port}`, protocolVersion: 4 });
    const ac = new AbortController();
    await client.start(ac.signal);
    const peer = await broker.accept();
    await rec.until(() => rec.ups.length === 1, 'up');
    ac.abort();
    await peer.next('disconnect');
    await rec.until(() => rec.downs.length === 1, 'down');
    expect(client.connected).toBe(false);
  });

  it('refuses a URL that is not mqtt:// or mqtts:// with a clear error', () => {
    expect(() => makeClient({ url: 'http://broker.example.com' })).toThrow('bridge url "http://broker.example.com" must start with mqtts:// (or mqtt:// for tests)');
  });
});

describe('PacketIds', () => {
  it('gives the client ids far from, and never equal to, the ids the caller has in flight', () => {
    const ids = new PacketIds();
    for (let i = 1; i <= 100; i++) ids.callerSent(i);
    const own = ids.allocateOwn()!;
    expect(own).toBeGreaterThan(30_000);
    ids.callerSent(own + 1);
    const next = ids.allocateOwn()!;
    expect([own, own + 1]).not.toContain(next);
    expect(ids.releaseOwn(own)).toBe(true);
    expect(ids.releaseOwn(own)).toBe(false);
  });
});
