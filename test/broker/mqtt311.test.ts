/**
 * MQTT 3.1.1 behaviour of the broker over in-memory connections, statement by statement
 * where the spec has one. Clients are RawClients: they send exactly the packets written here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Packet } from 'mqtt-packet';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import type { RawClient } from '../helpers/raw-client.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { Message, QoS } from '../../src/core/message.js';

type Publish = Extract<Packet, { cmd: 'publish' }>;
type Connect = Extract<Packet, { cmd: 'connect' }>;

let h: Harness | undefined;
const clients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.length = 0;
  await h?.close();
  h = undefined;
});

function start(options: Partial<BrokerOptions> = {}, clock?: FakeClock): Harness {
  h = startBroker(options, clock);
  return h;
}

/** A new connection (not yet connected); destroying it is seen by the broker, like a TCP reset. */
function open(): RawClient {
  const client = h!.client(4);
  clients.push(client);
  return client;
}

async function connected(clientId: string, opts: Partial<Connect> = {}): Promise<RawClient> {
  const c = open();
  const ack = await c.connect({ clientId, ...opts });
  expect(ack.returnCode).toBe(0);
  return c;
}

async function subscribe(c: RawClient, filter: string, qos: QoS, messageId = 1): Promise<void> {
  c.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos }] });
  const ack = await c.next('suback');
  expect(ack.messageId).toBe(messageId);
  expect(ack.granted).toEqual([qos]);
}

function publish(c: RawClient, topic: string, payload: string, qos: QoS = 0, extra: Partial<Publish> = {}): void {
  c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...(qos > 0 ? { messageId: 1 } : {}), ...extra } as Publish);
}

/** The next `n` packets in arrival order, whatever their type. */
async function take(c: RawClient, n: number, timeoutMs = 2000): Promise<Packet[]> {
  const deadline = Date.now() + timeoutMs;
  while (c.received.length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} packets, got ${c.received.map((p) => p.cmd).join(',') || 'nothing'}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return c.received.splice(0, n);
}

/** Waits a little and asserts nothing (more) arrived. */
async function expectSilence(c: RawClient, ms = 60): Promise<void> {
  await c.settle(ms);
  expect(c.received.map((p) => p.cmd)).toEqual([]);
}

/** Lets stream callbacks and next-tick flushes run (for FakeClock tests). */
const ticks = () => new Promise((r) => setTimeout(r, 10));

const text = (p: Publish) => String(p.payload);

describe('CONNECT / CONNACK', () => {
  it('accepts a clean 3.1.1 CONNECT with return code 0 and session present 0 [MQTT-3.2.2-1]', async () => {
    start();
    const c = open();
    const ack = await c.connect({ clientId: 'dev-1', clean: true });
    expect(ack.returnCode).toBe(0);
    expect(ack.sessionPresent).toBe(false);
  });

  it('refuses an empty client id without clean session with return code 2 and closes [MQTT-3.1.3-8]', async () => {
    start();
    const c = open();
    // mqtt-packet refuses to encode this CONNECT, so it goes as bytes: MQTT, level 4, flags 0, keepalive 60, empty id.
    c.sendRaw([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 60, 0, 0]);
    const ack = await c.next('connack');
    expect(ack.returnCode).toBe(2);
    expect(ack.sessionPresent).toBe(false);
    await c.waitClosed();
    expect(h!.broker.sessionCount).toBe(0);
  });

  it('accepts an empty client id with clean session and gives each such client its own session [MQTT-3.1.3-6]', async () => {
    start();
    const a = await connected('', { clean: true });
    const b = await connected('', { clean: true });
    expect(h!.broker.sessionCount).toBe(2);
    await subscribe(a, 'e/a', 0);
    await subscribe(b, 'e/b', 0);
    publish(b, 'e/a', 'to-a');
    expect(text(await a.next('publish'))).toBe('to-a');
    expect(a.closed || b.closed).toBe(false);
  });

  it('reports session present when a persistent session is resumed [MQTT-3.2.2-2]', async () => {
    start();
    const c = await connected('p1', { clean: false });
    c.send({ cmd: 'disconnect' });
    await c.waitClosed();
    const again = open();
    const ack = await again.connect({ clientId: 'p1', clean: false });
    expect(ack.returnCode).toBe(0);
    expect(ack.sessionPresent).toBe(true);
  });

  it('discards the old session when the client reconnects with clean session [MQTT-3.1.2-6]', async () => {
    start();
    const c = await connected('p2', { clean: false });
    await subscribe(c, 'gone/#', 1);
    c.send({ cmd: 'disconnect' });
    await c.waitClosed();
    const again = open();
    const ack = await again.connect({ clientId: 'p2', clean: true });
    expect(ack.sessionPresent).toBe(false);
    const pub = await connected('pub');
    publish(pub, 'gone/x', 'x', 1);
    await pub.next('puback');
    await expectSilence(again);
  });

  it('ends a clean session with the connection: nothing is kept after the client leaves [MQTT-3.1.2-6]', async () => {
    start();
    const c = await connected('tmp', { clean: true });
    await subscribe(c, 't/#', 1);
    c.send({ cmd: 'disconnect' });
    await c.waitClosed();
    await ticks();
    expect(h!.broker.sessionCount).toBe(0);
  });

  it('closes the existing connection when a second client connects with the same id [MQTT-3.1.4-2]', async () => {
    start();
    const first = await connected('same', { clean: false });
    await subscribe(first, 'keep/#', 1);
    const second = open();
    const ack = await second.connect({ clientId: 'same', clean: false });
    expect(ack.returnCode).toBe(0);
    expect(ack.sessionPresent).toBe(true);
    await first.waitClosed();
    expect(h!.broker.connectionCount).toBe(1);
    // The session (and its subscription) now lives on the new connection.
    const pub = await connected('pub');
    publish(pub, 'keep/1', 'still here', 1);
    expect(text(await second.next('publish'))).toBe('still here');
  });

  it('accepts an MQTT 3.1 CONNECT (MQIsdp, level 3) and a client id longer than 23 characters [MQTT-3.1.3-5]', async () => {
    start();
    const c = open();
    const id = 'a-client-id-that-is-longer-than-23';
    const body = [0, 6, ...Buffer.from('MQIsdp'), 3, 0x02, 0, 0, 0, id.length, ...Buffer.from(id)];
    c.sendRaw([0x10, body.length, ...body]);
    const ack = await c.next('connack');
    expect(ack.returnCode).toBe(0);
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
  });

  it('expires a 3.1.1 persistent session after the configured maximum session lifetime', async () => {
    const clock = new FakeClock();
    start({ maxSessionExpiry: 3600 }, clock);
    const c = await connected('expiring', { clean: false });
    await subscribe(c, 'x/#', 1);
    c.destroy();
    await ticks();
    expect(h!.broker.sessionCount).toBe(1);
    clock.advance(3599_000);
    expect(h!.broker.sessionCount).toBe(1);
    clock.advance(1_000);
    expect(h!.broker.sessionCount).toBe(0);
    const again = open();
    expect((await again.connect({ clientId: 'expiring', clean: false })).sessionPresent).toBe(false);
  });

  it('answers PINGREQ with PINGRESP [MQTT-3.12.4-1]', async () => {
    start();
    const c = await connected('pinger');
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
  });

  it('closes a connection that sends no CONNECT within the connect timeout', async () => {
    const clock = new FakeClock();
    start({ connectTimeoutMs: 5000 }, clock);
    const c = open();
    await ticks();
    clock.advance(4999);
    await ticks();
    expect(c.closed).toBe(false);
    clock.advance(1);
    await c.waitClosed();
    expect(h!.broker.metrics.violations.get('connect-timeout')).toBe(1);
    expect(h!.broker.connectionCount).toBe(0);
  });

  it('does not time out a connection that sent CONNECT in time', async () => {
    const clock = new FakeClock();
    start({ connectTimeoutMs: 5000 }, clock);
    const c = await connected('quick');
    clock.advance(60_000);
    await ticks();
    expect(c.closed).toBe(false);
  });
});

describe('keepalive', () => {
  it('closes the connection after one and a half keepalive periods of silence, not before [MQTT-3.1.2-24]', async () => {
    const clock = new FakeClock();
    start({}, clock);
    const c = await connected('ka', { keepalive: 10 });
    clock.advance(14_000);
    await ticks();
    expect(c.closed).toBe(false);
    clock.advance(1_000);
    await c.waitClosed();
    expect(h!.broker.metrics.violations.get('keep-alive-timeout')).toBe(1);
  });

  it('restarts the keepalive period on every control packet, PINGREQ included', async () => {
    const clock = new FakeClock();
    start({}, clock);
    const c = await connected('ka2', { keepalive: 10 });
    for (let i = 0; i < 4; i++) {
      clock.advance(14_000);
      c.send({ cmd: 'pingreq' });
      await c.next('pingresp');
    }
    expect(c.closed).toBe(false);
    // Keepalives are checked by one sweep timer (every 500 ms): cut at most one sweep late.
    clock.advance(15_500);
    await c.waitClosed();
  });

  it('never times out a client with keepalive 0 [MQTT-3.1.2-10]', async () => {
    const clock = new FakeClock();
    start({}, clock);
    const c = await connected('ka0', { keepalive: 0 });
    clock.advance(24 * 3600 * 1000);
    await ticks();
    expect(c.closed).toBe(false);
  });
});

describe('QoS flows', () => {
  it('delivers QoS 0 both ways without a packet id or acknowledgement', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'q0', 0);
    const pub = await connected('pub');
    publish(pub, 'q0', 'zero');
    const got = await sub.next('publish');
    expect(got.qos).toBe(0);
    expect(got.messageId).toBeUndefined();
    expect(text(got)).toBe('zero');
    await expectSilence(pub);
  });

  it('acknowledges a QoS 1 publish with PUBACK carrying its packet id and delivers with a non-zero id [MQTT-4.3.2-2]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'q1', 1);
    const pub = await connected('pub');
    publish(pub, 'q1', 'one', 1, { messageId: 4242 });
    expect((await pub.next('puback')).messageId).toBe(4242);
    const got = await sub.next('publish');
    expect(got.qos).toBe(1);
    expect(got.dup).toBe(false);
    expect(got.messageId).toBeGreaterThan(0);
    sub.send({ cmd: 'puback', messageId: got.messageId });
  });

  it('runs the full QoS 2 handshake inbound: PUBREC, then PUBCOMP for PUBREL, delivering once [MQTT-4.3.3-2]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'q2', 2);
    const pub = await connected('pub');
    publish(pub, 'q2', 'two', 2, { messageId: 77 });
    expect((await pub.next('pubrec')).messageId).toBe(77);
    // A resend with DUP before PUBREL is answered again but not delivered again [MQTT-4.3.3-9].
    publish(pub, 'q2', 'two', 2, { messageId: 77, dup: true });
    expect((await pub.next('pubrec')).messageId).toBe(77);
    pub.send({ cmd: 'pubrel', messageId: 77 });
    expect((await pub.next('pubcomp')).messageId).toBe(77);
    // After PUBCOMP the id is free: the same id is a new message.
    publish(pub, 'q2', 'again', 2, { messageId: 77 });
    expect((await pub.next('pubrec')).messageId).toBe(77);
    pub.send({ cmd: 'pubrel', messageId: 77 });
    await pub.next('pubcomp');
    const received = (await take(sub, 2)) as Publish[];
    expect(received.map((p) => [p.cmd, p.qos, text(p)])).toEqual([['publish', 2, 'two'], ['publish', 2, 'again']]);
    await expectSilence(sub); // no duplicate of "two"
  });

  it('runs the full QoS 2 handshake outbound: PUBLISH, PUBREC → PUBREL with the same id, PUBCOMP [MQTT-4.3.3-1]', async () => {
    start({ maxInflight: 1 });
    const sub = await connected('sub');
    await subscribe(sub, 'out2', 2);
    const pub = await connected('pub');
    publish(pub, 'out2', 'first', 2, { messageId: 1 });
    publish(pub, 'out2', 'second', 2, { messageId: 2 });
    const p1 = await sub.next('publish');
    expect(p1.qos).toBe(2);
    expect(text(p1)).toBe('first');
    // With a window of one the second waits until the first is complete.
    await expectSilence(sub);
    sub.send({ cmd: 'pubrec', messageId: p1.messageId });
    const rel = await sub.next('pubrel');
    expect(rel.messageId).toBe(p1.messageId);
    await expectSilence(sub); // still in flight until PUBCOMP
    sub.send({ cmd: 'pubcomp', messageId: p1.messageId });
    const p2 = await sub.next('publish');
    expect(text(p2)).toBe('second');
    expect(p2.messageId).toBeGreaterThan(0);
  });

  it('gives concurrent in-flight messages to one client distinct packet ids [MQTT-2.3.1-2]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'ids', 2);
    const pub = await connected('pub');
    for (let i = 0; i < 10; i++) publish(pub, 'ids', `m${i}`, (1 + (i % 2)) as QoS, { messageId: i + 1 });
    const got = (await take(sub, 10)) as Publish[];
    const ids = got.map((p) => p.messageId);
    expect(new Set(ids).size).toBe(10);
    expect(ids.every((id) => id !== undefined && id > 0)).toBe(true);
    expect(got.map(text)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  });

  it.each([
    [2, 0, 0],
    [2, 1, 1],
    [2, 2, 2],
    [1, 2, 1],
    [0, 2, 0],
    [1, 0, 0],
  ] as [QoS, QoS, QoS][])('delivers a QoS %i publish to a QoS %i subscription at QoS %i [MQTT-3.8.4-6]', async (pubQos, subQos, expected) => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'dg', subQos);
    const pub = await connected('pub');
    publish(pub, 'dg', 'x', pubQos, { messageId: 9 });
    const got = await sub.next('publish');
    expect(got.qos).toBe(expected);
  });

  it('sends PUBACKs in the order the PUBLISHes arrived even when commits finish out of order [MQTT-4.6.0-2/-3]', async () => {
    start();
    const resolvers: (() => void)[] = [];
    h!.broker.addDurableSink({ name: 'slow', selects: () => true, accept: () => new Promise<void>((r) => resolvers.push(r)) });
    const pub = await connected('pub');
    for (let i = 1; i <= 12; i++) publish(pub, 'ord', `m${i}`, (i % 3 === 0 ? 2 : 1) as QoS, { messageId: i });
    const deadline = Date.now() + 2000;
    while (resolvers.length < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(resolvers).toHaveLength(12);
    await expectSilence(pub); // nothing acknowledged before the commit
    for (const r of [...resolvers].reverse()) r();
    const acks = await take(pub, 12);
    expect(acks.map((p) => `${p.cmd}:${(p as { messageId?: number }).messageId}`)).toEqual(
      Array.from({ length: 12 }, (_, k) => `${(k + 1) % 3 === 0 ? 'pubrec' : 'puback'}:${k + 1}`),
    );
  });

  it('keeps PUBACK order for many QoS 1 publishes without durable sinks', async () => {
    start();
    const pub = await connected('pub');
    for (let i = 1; i <= 50; i++) publish(pub, 'ord', `m${i}`, 1, { messageId: i });
    const acks = await take(pub, 50);
    expect(acks.map((p) => (p as { messageId?: number }).messageId)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
  });
});

describe('persistent sessions', () => {
  it('resends unacknowledged QoS 1/2 PUBLISHes with DUP and the same ids, and PUBREL for those past PUBREC, in order [MQTT-4.4.0-1]', async () => {
    start();
    const sub = await connected('durable', { clean: false });
    await subscribe(sub, 'r/#', 2);
    const pub = await connected('pub');
    publish(pub, 'r/1', 'm1', 1, { messageId: 1 });
    publish(pub, 'r/2', 'm2', 2, { messageId: 2 });
    publish(pub, 'r/3', 'm3', 2, { messageId: 3 });
    const [m1, m2, m3] = (await take(sub, 3)) as Publish[];
    expect([m1, m2, m3].map((p) => [text(p), p.qos, p.dup])).toEqual([['m1', 1, false], ['m2', 2, false], ['m3', 2, false]]);
    sub.send({ cmd: 'pubrec', messageId: m3!.messageId });
    expect((await sub.next('pubrel')).messageId).toBe(m3!.messageId);
    await expectSilence(sub);
    sub.destroy(); // network failure: nothing acknowledged except m3's PUBREC

    const back = open();
    const ack = await back.connect({ clientId: 'durable', clean: false });
    expect(ack.sessionPresent).toBe(true);
    const resent = await take(back, 3);
    expect(resent[0]).toMatchObject({ cmd: 'publish', dup: true, qos: 1, messageId: m1!.messageId, topic: 'r/1' });
    expect(resent[1]).toMatchObject({ cmd: 'publish', dup: true, qos: 2, messageId: m2!.messageId, topic: 'r/2' });
    expect(resent[2]).toMatchObject({ cmd: 'pubrel', messageId: m3!.messageId });
    expect(text(resent[1] as Publish)).toBe('m2');

    // Finish every flow; a further reconnect resends nothing.
    back.send({ cmd: 'puback', messageId: m1!.messageId });
    back.send({ cmd: 'pubrec', messageId: m2!.messageId });
    expect((await back.next('pubrel')).messageId).toBe(m2!.messageId);
    back.send({ cmd: 'pubcomp', messageId: m2!.messageId });
    back.send({ cmd: 'pubcomp', messageId: m3!.messageId });
    await expectSilence(back);
    back.destroy();
    const third = open();
    expect((await third.connect({ clientId: 'durable', clean: false })).sessionPresent).toBe(true);
    await expectSilence(third);
  });

  it('queues QoS 1/2 messages for an offline persistent session and delivers them in order on reconnect, without QoS 0 [MQTT-3.1.2-5]', async () => {
    start();
    const sub = await connected('offline', { clean: false });
    await subscribe(sub, 'o/#', 2);
    sub.send({ cmd: 'disconnect' });
    await sub.waitClosed();
    await ticks();

    const pub = await connected('pub');
    const plan: [string, QoS][] = [['a', 1], ['b', 2], ['c', 0], ['d', 1], ['e', 2], ['f', 0], ['g', 1]];
    plan.forEach(([p, q], i) => publish(pub, `o/${p}`, p, q, { messageId: i + 1 }));
    pub.send({ cmd: 'pingreq' });
    await pub.next('pingresp');
    await pub.settle(20);
    expect(h!.broker.metrics.drops.get('offline-qos0')).toBe(2);

    const back = open();
    expect((await back.connect({ clientId: 'offline', clean: false })).sessionPresent).toBe(true);
    const got = (await take(back, 5)) as Publish[];
    expect(got.map((p) => [text(p), p.qos, p.dup])).toEqual([
      ['a', 1, false], ['b', 2, false], ['d', 1, false], ['e', 2, false], ['g', 1, false],
    ]);
    expect(new Set(got.map((p) => p.messageId)).size).toBe(5);
    await expectSilence(back);
  });

  it('drops new messages beyond the queue limit of an offline session, keeping the oldest, and counts them', async () => {
    start({ maxQueuedMessages: 3 });
    const sub = await connected('full', { clean: false });
    await subscribe(sub, 'f/#', 1);
    sub.send({ cmd: 'disconnect' });
    await sub.waitClosed();
    const pub = await connected('pub');
    for (let i = 1; i <= 5; i++) publish(pub, 'f/x', `m${i}`, 1, { messageId: i });
    await take(pub, 5);
    expect(h!.broker.metrics.drops.get('queue-full')).toBe(2);
    const back = open();
    await back.connect({ clientId: 'full', clean: false });
    const got = (await take(back, 3)) as Publish[];
    expect(got.map(text)).toEqual(['m1', 'm2', 'm3']);
    await expectSilence(back);
  });

  it('keeps the queue order when the window is smaller than the backlog', async () => {
    start({ maxInflight: 2 });
    const sub = await connected('slow', { clean: false });
    await subscribe(sub, 'w/#', 1);
    sub.send({ cmd: 'disconnect' });
    await sub.waitClosed();
    const pub = await connected('pub');
    for (let i = 1; i <= 6; i++) publish(pub, 'w/x', `m${i}`, 1, { messageId: i });
    await take(pub, 6);
    const back = open();
    await back.connect({ clientId: 'slow', clean: false });
    const seen: string[] = [];
    while (seen.length < 6) {
      const batch = (await take(back, 2)) as Publish[];
      await expectSilence(back, 30); // never more than the window in flight
      for (const p of batch) {
        seen.push(text(p));
        back.send({ cmd: 'puback', messageId: p.messageId });
      }
    }
    expect(seen).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });
});

describe('subscriptions', () => {
  it('delivers one copy at the highest QoS of overlapping subscriptions [MQTT-3.3.5-1]', async () => {
    start();
    const sub = await connected('sub');
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ov/#', qos: 0 }, { topic: 'ov/+', qos: 2 }, { topic: 'ov/x', qos: 1 }] });
    expect((await sub.next('suback')).granted).toEqual([0, 2, 1]);
    const pub = await connected('pub');
    publish(pub, 'ov/x', 'once', 2, { messageId: 5 });
    const got = await sub.next('publish');
    expect(got.qos).toBe(2);
    expect(text(got)).toBe('once');
    await expectSilence(sub);
    // A topic matched by only the QoS 0 subscription comes at QoS 0.
    publish(pub, 'ov/y/z', 'low', 2, { messageId: 6 });
    const low = await sub.next('publish');
    expect(low.qos).toBe(0);
    await expectSilence(sub);
  });

  it('replaces a subscription to the same filter rather than adding a second one [MQTT-3.8.4-3]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'rep', 2, 1);
    await subscribe(sub, 'rep', 0, 2);
    const pub = await connected('pub');
    publish(pub, 'rep', 'x', 2, { messageId: 1 });
    const got = await sub.next('publish');
    expect(got.qos).toBe(0);
    await expectSilence(sub);
  });

  it('answers an invalid filter with 0x80 in its SUBACK slot and keeps the connection [MQTT-3.9.3-2]', async () => {
    start();
    const sub = await connected('sub');
    sub.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'ok/+', qos: 1 }, { topic: 'bad/#/x', qos: 1 }, { topic: 'a+', qos: 0 }] });
    const ack = await sub.next('suback');
    expect(ack.messageId).toBe(3);
    expect(ack.granted).toEqual([1, 0x80, 0x80]);
    sub.send({ cmd: 'pingreq' });
    await sub.next('pingresp');
  });

  it('stops delivery after UNSUBSCRIBE and acknowledges with the same packet id [MQTT-3.10.4-1/-4]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'u/+', 1);
    const pub = await connected('pub');
    publish(pub, 'u/1', 'before', 0);
    expect(text(await sub.next('publish'))).toBe('before');
    sub.send({ cmd: 'unsubscribe', messageId: 11, unsubscriptions: ['u/+'] });
    expect((await sub.next('unsuback')).messageId).toBe(11);
    publish(pub, 'u/1', 'after', 1, { messageId: 2 });
    await pub.next('puback');
    await expectSilence(sub);
  });

  it('delivers a 3.1.1 client its own publishes when it is subscribed (there is no No Local in 3.1.1)', async () => {
    start();
    const c = await connected('echo');
    await subscribe(c, 'echo/#', 1);
    publish(c, 'echo/1', 'self', 1, { messageId: 3 });
    expect((await c.next('puback')).messageId).toBe(3);
    expect(text(await c.next('publish'))).toBe('self');
  });

  it('delivers messages from one publisher in the order they were published, across QoS levels [MQTT-4.6.0-5]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'seq', 2);
    const pub = await connected('pub');
    for (let i = 0; i < 30; i++) publish(pub, 'seq', `m${i}`, (i % 3) as QoS, { messageId: i + 1 });
    const got = (await take(sub, 30)) as Publish[];
    expect(got.map(text)).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
  });

  it('acknowledges UNSUBSCRIBE of a filter it never had [MQTT-3.10.4-5]', async () => {
    start();
    const sub = await connected('sub');
    sub.send({ cmd: 'unsubscribe', messageId: 12, unsubscriptions: ['never/had'] });
    expect((await sub.next('unsuback')).messageId).toBe(12);
  });

  it('does not match $SYS topics with # or +/x, only with an explicit $SYS filter [MQTT-4.7.2-1]', async () => {
    start();
    const all = await connected('all');
    await subscribe(all, '#', 0, 1);
    await subscribe(all, '+/x', 0, 2);
    const sys = await connected('sys');
    await subscribe(sys, '$SYS/#', 0);
    h!.broker.publish({ topic: '$SYS/x', payload: Buffer.from('stats'), qos: 0, retain: false, origin: { kind: 'system', id: 'broker' } });
    expect(text(await sys.next('publish'))).toBe('stats');
    await expectSilence(all);
    // The same subscriptions do see an ordinary topic.
    h!.broker.publish({ topic: 'SYS/x', payload: Buffer.from('plain'), qos: 0, retain: false, origin: { kind: 'system', id: 'broker' } });
    expect(text(await all.next('publish'))).toBe('plain');
  });
});

describe('retained messages', () => {
  it('sends a stored retained message to a new subscriber with RETAIN=1 [MQTT-3.3.1-5/-8]', async () => {
    start();
    const pub = await connected('pub');
    publish(pub, 'ret/a', 'v1', 1, { retain: true, messageId: 1 });
    await pub.next('puback');
    const sub = await connected('sub');
    await subscribe(sub, 'ret/#', 1);
    const got = await sub.next('publish');
    expect(got).toMatchObject({ topic: 'ret/a', retain: true, qos: 1 });
    expect(text(got)).toBe('v1');
  });

  it('replaces the retained message of a topic with the newer one [MQTT-3.3.1-5]', async () => {
    start();
    const pub = await connected('pub');
    publish(pub, 'ret/a', 'v1', 0, { retain: true });
    publish(pub, 'ret/a', 'v2', 0, { retain: true });
    pub.send({ cmd: 'pingreq' });
    await pub.next('pingresp');
    const sub = await connected('sub');
    await subscribe(sub, 'ret/a', 0);
    const got = await sub.next('publish');
    expect(text(got)).toBe('v2');
    await expectSilence(sub);
  });

  it('clears the retained message on an empty retained payload, which live subscribers still receive [MQTT-3.3.1-10/-11]', async () => {
    start();
    const pub = await connected('pub');
    const live = await connected('live');
    await subscribe(live, 'ret/c', 0);
    publish(pub, 'ret/c', 'v1', 0, { retain: true });
    expect(text(await live.next('publish'))).toBe('v1');
    publish(pub, 'ret/c', '', 0, { retain: true });
    const cleared = await live.next('publish');
    expect(cleared.payload.length).toBe(0);
    expect(cleared.retain).toBe(false);
    const later = await connected('later');
    await subscribe(later, 'ret/#', 0);
    await expectSilence(later);
  });

  it('sends the retained message again when a subscription is replaced [MQTT-3.8.4-3]', async () => {
    start();
    const pub = await connected('pub');
    publish(pub, 'ret/again', 'r', 1, { retain: true, messageId: 1 });
    await pub.next('puback');
    const sub = await connected('sub');
    await subscribe(sub, 'ret/again', 1, 1);
    expect((await sub.next('publish')).retain).toBe(true);
    await subscribe(sub, 'ret/again', 0, 2);
    const again = await sub.next('publish');
    expect(again).toMatchObject({ retain: true, qos: 0 });
  });

  it('sets RETAIN=0 when a retained publish goes to existing subscribers [MQTT-3.3.1-9]', async () => {
    start();
    const sub = await connected('sub');
    await subscribe(sub, 'ret/live', 1);
    const pub = await connected('pub');
    publish(pub, 'ret/live', 'now', 1, { retain: true, messageId: 3 });
    const got = await sub.next('publish');
    expect(got.retain).toBe(false);
    expect(text(got)).toBe('now');
  });

  it('sends a retained message at the lower of its QoS and the subscription QoS', async () => {
    start();
    const pub = await connected('pub');
    publish(pub, 'ret/q', 'q2', 2, { retain: true, messageId: 1 });
    await pub.next('pubrec');
    pub.send({ cmd: 'pubrel', messageId: 1 });
    await pub.next('pubcomp');
    const sub = await connected('sub');
    await subscribe(sub, 'ret/q', 1);
    const got = await sub.next('publish');
    expect(got).toMatchObject({ qos: 1, retain: true });
  });

  it('does not send retained $SYS messages to a # subscriber [MQTT-4.7.2-1]', async () => {
    start();
    h!.broker.publish({ topic: '$SYS/ret', payload: Buffer.from('s'), qos: 0, retain: true, origin: { kind: 'system', id: 'broker' } });
    const sub = await connected('sub');
    await subscribe(sub, '#', 0);
    await expectSilence(sub);
    await subscribe(sub, '$SYS/+', 0, 2);
    expect(text(await sub.next('publish'))).toBe('s');
  });
});

describe('will messages', () => {
  const will = { topic: 'will/dev', payload: Buffer.from('gone'), qos: 1 as QoS, retain: false };

  async function watcher(): Promise<RawClient> {
    const w = await connected('watcher');
    await subscribe(w, 'will/#', 1);
    return w;
  }

  it('publishes the will when the network connection is lost [MQTT-3.1.2-8]', async () => {
    start();
    const w = await watcher();
    const dev = await connected('dev', { will });
    dev.destroy();
    const got = await w.next('publish');
    expect(got).toMatchObject({ topic: 'will/dev', qos: 1 });
    expect(text(got)).toBe('gone');
  });

  it('publishes the will when the client closes the connection without DISCONNECT', async () => {
    start();
    const w = await watcher();
    const dev = await connected('dev', { will });
    dev.end();
    expect(text(await w.next('publish'))).toBe('gone');
  });

  it('publishes the will when the keepalive expires, at 15 s for keepalive 10 and not at 14 s', async () => {
    const clock = new FakeClock();
    start({}, clock);
    const w = await watcher();
    const dev = await connected('dev', { will, keepalive: 10 });
    clock.advance(14_000);
    await expectSilence(w);
    expect(dev.closed).toBe(false);
    clock.advance(1_000);
    await dev.waitClosed();
    expect(text(await w.next('publish'))).toBe('gone');
  });

  it('publishes the will when the broker closes the connection for a protocol violation [MQTT-3.1.2-8]', async () => {
    start();
    const w = await watcher();
    const dev = await connected('dev', { will });
    dev.send({ cmd: 'connect', clientId: 'dev', protocolVersion: 4, clean: true, keepalive: 0 } as Connect);
    await dev.waitClosed();
    expect(text(await w.next('publish'))).toBe('gone');
  });

  it('does not publish the will after DISCONNECT [MQTT-3.1.2-10] [MQTT-3.14.4-3]', async () => {
    start();
    const w = await watcher();
    const dev = await connected('dev', { will });
    dev.send({ cmd: 'disconnect' });
    await dev.waitClosed();
    await ticks();
    expect(h!.broker.connectionCount).toBe(1);
    await expectSilence(w, 100);
  });

  it('publishes a QoS 2 will at QoS 2 to a QoS 2 subscriber [MQTT-3.1.2-14]', async () => {
    start();
    const w = await connected('watcher2');
    await subscribe(w, 'will/#', 2);
    const dev = await connected('dev', { will: { ...will, qos: 2 } });
    dev.destroy();
    const got = await w.next('publish');
    expect(got.qos).toBe(2);
    expect(text(got)).toBe('gone');
  });

  it('retains a will that has the will retain flag [MQTT-3.1.2-17]', async () => {
    start();
    const dev = await connected('dev', { will: { ...will, retain: true } });
    dev.destroy();
    await ticks();
    const later = await connected('later');
    await subscribe(later, 'will/dev', 1);
    const got = await later.next('publish');
    expect(got.retain).toBe(true);
    expect(text(got)).toBe('gone');
  });

  it('publishes the will of a connection taken over by the same client id', async () => {
    start();
    const w = await watcher();
    const dev = await connected('dev', { will });
    const dev2 = open();
    await dev2.connect({ clientId: 'dev' });
    await dev.waitClosed();
    expect(text(await w.next('publish'))).toBe('gone');
    expect(dev2.closed).toBe(false);
  });
});

describe('bus interplay', () => {
  it('delivers bus publishes to MQTT subscribers and MQTT publishes to bus subscribers', async () => {
    start();
    const seen: Message[] = [];
    h!.broker.subscribe('bus/#', { kind: 'serial', id: 'tty' }, { qos: 1 }, (m) => seen.push(m));
    const sub = await connected('sub');
    await subscribe(sub, 'bus/#', 1);
    h!.broker.publish({ topic: 'bus/a', payload: Buffer.from('from-bus'), qos: 1, retain: false, origin: { kind: 'serial', id: 'tty' } });
    expect(text(await sub.next('publish'))).toBe('from-bus');
    const pub = await connected('pub');
    publish(pub, 'bus/b', 'from-mqtt', 1, { messageId: 1 });
    await pub.next('puback');
    expect(seen.map((m) => String(m.payload))).toEqual(['from-bus', 'from-mqtt']);
  });
});
