/**
 * The broker as the in-process Bus (src/core/bus.ts): in-process subscribers and
 * publishers meet MQTT clients, and durable sinks hold back acknowledgements until
 * they committed the message (persist before you acknowledge, DESIGN §4).
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message, Origin } from '../../src/core/message.js';
import { OutpostError } from '../../src/core/errors.js';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import { connect, publish, publishPacket, subscribe, takePublishes, ticks, until } from '../helpers/flows.js';
import { deferred } from '../../src/core/deferred.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const bridge: Origin = { kind: 'bridge', id: 'cloud' };
const boiler: Origin = { kind: 'serial', id: 'boiler' };

function msg(topic: string, payload: string, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, origin: boiler, ...extra };
}

describe('bus subscribers', () => {
  it('receive what MQTT clients publish, with topic, payload, QoS, origin and properties', async () => {
    h = startBroker();
    const got: Message[] = [];
    h.broker.subscribe('sensors/#', bridge, { qos: 1 }, (m) => void got.push(m));
    const { c } = await connect(h, 'dev-1');
    await publish(c, 'sensors/t', '21.5', 1, { properties: { contentType: 'text/plain', userProperties: { unit: 'C' } } });
    expect(got).toHaveLength(1);
    const m = got[0]!;
    expect([m.topic, String(m.payload), m.qos, m.retain]).toEqual(['sensors/t', '21.5', 1, false]);
    expect(m.origin).toEqual({ kind: 'mqtt', id: 'dev-1' });
    expect(m.properties).toEqual({ contentType: 'text/plain', userProperties: { unit: 'C' } });
  });

  it('get messages at the lower of the published and the subscribed QoS', async () => {
    h = startBroker();
    const got: Message[] = [];
    h.broker.subscribe('q/#', bridge, { qos: 0 }, (m) => void got.push(m));
    const { c } = await connect(h, 'dev');
    await publish(c, 'q/a', 'x', 2);
    expect(got.map((m) => m.qos)).toEqual([0]);
  });

  it('get retained messages right after subscribing when they ask for them, with RETAIN set', async () => {
    h = startBroker();
    const { c } = await connect(h, 'dev');
    await publish(c, 'state/door', 'open', 1, { retain: true });
    const got: Message[] = [];
    h.broker.subscribe('state/+', bridge, { qos: 1, sendRetained: true }, (m) => void got.push(m));
    expect(got.map((m) => [m.topic, String(m.payload), m.retain])).toEqual([['state/door', 'open', true]]);
    const none: Message[] = [];
    h.broker.subscribe('state/+', bridge, { qos: 1 }, (m) => void none.push(m));
    expect(none).toEqual([]);
  });

  it('stop receiving after unsubscribe', async () => {
    h = startBroker();
    const got: string[] = [];
    const sub = h.broker.subscribe('t', bridge, { qos: 0 }, (m) => void got.push(String(m.payload)));
    h.broker.publish(msg('t', 'one'));
    sub.unsubscribe();
    h.broker.publish(msg('t', 'two'));
    expect(got).toEqual(['one']);
  });

  it('refuse an invalid filter with an error naming it', () => {
    h = startBroker();
    expect(() => h!.broker.subscribe('a/#/b', bridge, { qos: 0 }, () => undefined)).toThrow(/a\/#\/b/);
  });

  it('with No Local do not get messages from their own origin, but do from others [MQTT-3.8.3-3]', async () => {
    h = startBroker();
    const got: string[] = [];
    h.broker.subscribe('cmd/#', boiler, { qos: 0, noLocal: true }, (m) => void got.push(String(m.payload)));
    h.broker.publish(msg('cmd/x', 'own'));
    h.broker.publish(msg('cmd/x', 'other device', { origin: { kind: 'serial', id: 'pump' } }));
    expect(got).toEqual(['other device']);
  });

  it('with No Local still get messages from an MQTT client whose client id equals their origin id', async () => {
    h = startBroker();
    const got: string[] = [];
    h.broker.subscribe('cmd/#', boiler, { qos: 0, noLocal: true }, (m) => void got.push(String(m.payload)));
    // A client that happens to be called "boiler" is not the serial device "boiler".
    const { c } = await connect(h, 'boiler');
    await publish(c, 'cmd/x', 'from mqtt', 1);
    expect(got).toEqual(['from mqtt']);
  });

  it('do not break routing for others when one of them throws', async () => {
    h = startBroker();
    const got: string[] = [];
    h.broker.subscribe('t/#', bridge, { qos: 1 }, () => {
      throw new Error('handler bug');
    });
    h.broker.subscribe('t/#', boiler, { qos: 1 }, (m) => void got.push(String(m.payload)));
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 't/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 't/a', 'still routed', 1); // the publisher gets its PUBACK
    expect(got).toEqual(['still routed']);
    expect(String((await sub.next('publish')).payload)).toBe('still routed');
  });
});

describe('bus publish', () => {
  it('reaches MQTT 3.1.1 and MQTT 5 subscribers and needs no wait without durable sinks', async () => {
    h = startBroker();
    const { c: v4 } = await connect(h, 'v4', {}, 4);
    const { c: v5 } = await connect(h, 'v5');
    await subscribe(v4, 'sensors/+/temp', 1);
    await subscribe(v5, 'sensors/#', 0);
    const wait = h.broker.publish(msg('sensors/boiler/temp', '68', { properties: { contentType: 'text/plain' } }));
    expect(wait).toBeUndefined();
    const a = await v4.next('publish');
    expect([a.topic, String(a.payload), a.qos]).toEqual(['sensors/boiler/temp', '68', 1]);
    const b = await v5.next('publish');
    expect([b.topic, String(b.payload), b.qos, b.properties?.contentType]).toEqual(['sensors/boiler/temp', '68', 0, 'text/plain']);
  });

  it('stores retained messages for later MQTT subscribers', async () => {
    h = startBroker();
    h.broker.publish(msg('state/boiler', 'on', { retain: true }));
    const { c } = await connect(h, 'late');
    await subscribe(c, 'state/#', 1);
    const got = await c.next('publish');
    expect([got.topic, String(got.payload), got.retain]).toEqual(['state/boiler', 'on', true]);
  });

  it('does not deliver an already expired message', async () => {
    h = startBroker();
    const got: Message[] = [];
    h.broker.subscribe('t', bridge, { qos: 1 }, (m) => void got.push(m));
    h.broker.publish(msg('t', 'old', { expiresAt: Date.now() - 1 }));
    expect(got).toEqual([]);
  });
});

describe('durable sinks', () => {
  it('hold back the QoS 1 PUBACK until accept resolves', async () => {
    h = startBroker();
    const commit = deferred();
    const accepted: Message[] = [];
    h.broker.addDurableSink({ name: 'outbox', selects: (m) => m.topic.startsWith('sensors/'), accept: (m) => (accepted.push(m), commit.promise) });
    const { c } = await connect(h, 'dev');
    const p = publishPacket('sensors/t', '1', 1);
    c.send(p);
    await until(() => accepted.length === 1, 'the sink to see the message');
    await ticks(30);
    expect(c.received.filter((x) => x.cmd === 'puback')).toEqual([]);
    commit.resolve();
    const ack = await c.next('puback');
    expect(ack.messageId).toBe(p.messageId);
    expect(ack.reasonCode ?? 0).toBe(0);
  });

  it('hold back the QoS 2 PUBREC until accept resolves', async () => {
    h = startBroker();
    const commit = deferred();
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => commit.promise });
    const { c } = await connect(h, 'dev');
    const p = publishPacket('sensors/t', '1', 2);
    c.send(p);
    await ticks(30);
    expect(c.received).toEqual([]);
    commit.resolve();
    expect((await c.next('pubrec')).messageId).toBe(p.messageId);
  });

  it('keep PUBACKs in PUBLISH order when a later message not selected by the sink is ready first [MQTT-4.6.0-2]', async () => {
    h = startBroker();
    const commit = deferred();
    h.broker.addDurableSink({ name: 'outbox', selects: (m) => m.topic === 'durable', accept: () => commit.promise });
    const { c } = await connect(h, 'dev');
    const first = publishPacket('durable', 'a', 1);
    const second = publishPacket('local', 'b', 1);
    const third = publishPacket('local', 'c', 1);
    c.send(first);
    c.send(second);
    c.send(third);
    await ticks(30);
    expect(c.received.filter((x) => x.cmd === 'puback')).toEqual([]);
    commit.resolve();
    const acks = [await c.next('puback'), await c.next('puback'), await c.next('puback')];
    expect(acks.map((a) => a.messageId)).toEqual([first.messageId, second.messageId, third.messageId]);
  });

  it('see messages published on the bus, and the publish promise settles with the commit', async () => {
    h = startBroker();
    const commit = deferred();
    const seen: string[] = [];
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: (m) => (seen.push(m.topic), commit.promise) });
    const wait = h.broker.publish(msg('sensors/x', '1'));
    expect(wait).toBeInstanceOf(Promise);
    expect(seen).toEqual(['sensors/x']);
    let settled = false;
    void wait!.then(() => (settled = true));
    await ticks(10);
    expect(settled).toBe(false);
    commit.resolve();
    await wait;
    expect(settled).toBe(true);
  });

  it('acknowledge at once again after the sink is removed', async () => {
    h = startBroker();
    const remove = h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => new Promise<void>(() => undefined) });
    remove();
    const { c } = await connect(h, 'dev');
    await publish(c, 'sensors/t', '1', 1);
  });

  it.each([
    { what: 'an unexpected error', err: new Error('disk gone'), code: 0x80, hex: '0x80' },
    { what: 'STORE_FULL', err: new OutpostError('STORE_FULL', 'outbox is full'), code: 0x97, hex: '0x97' },
  ])('answer a rejected accept ($what) with a v5 PUBACK reason $hex', async ({ err, code }) => {
    h = startBroker();
    const commit = deferred();
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => commit.promise });
    const { c } = await connect(h, 'dev');
    const p = publishPacket('sensors/t', '1', 1);
    c.send(p);
    await ticks(10);
    commit.reject(err);
    const ack = await c.next('puback');
    expect([ack.messageId, ack.reasonCode]).toEqual([p.messageId, code]);
    // The client stays connected.
    await ticks(10);
    expect(c.closed).toBe(false);
  });

  it('answer a rejected accept for a v5 QoS 2 publish with PUBREC 0x97 and forget the packet id', async () => {
    h = startBroker();
    let fail = true;
    h.broker.addDurableSink({
      name: 'outbox',
      selects: () => true,
      accept: () => (fail ? Promise.reject(new OutpostError('STORE_FULL', 'full')) : Promise.resolve()),
    });
    const { c } = await connect(h, 'dev');
    const p = publishPacket('sensors/t', '1', 2);
    c.send(p);
    expect((await c.next('pubrec')).reasonCode).toBe(0x97);
    // The same packet id can be used for a new message right away (§4.3.3).
    fail = false;
    c.send({ ...p, payload: Buffer.from('2') });
    const rec = await c.next('pubrec');
    expect([rec.messageId, rec.reasonCode ?? 0]).toEqual([p.messageId, 0]);
  });

  it.each([4, 5] as const)('take a resent QoS 2 publish (v%i) again when the first accept failed after the connection dropped, instead of acknowledging it unstored', async (version) => {
    h = startBroker();
    const commits: ReturnType<typeof deferred>[] = [];
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => (commits.push(deferred()), commits.at(-1)!.promise) });
    const opts = version === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
    const first = await connect(h, 'sensor', opts, version);
    const p = publishPacket('sensors/t', 'precious', 2);
    first.c.send(p);
    await until(() => commits.length === 1, 'the first accept');
    first.c.destroy();
    await until(() => h!.broker.connectionCount === 0, 'the drop');
    commits[0]!.reject(new Error('disk gone'));
    await ticks(5);
    const again = await connect(h, 'sensor', opts, version);
    expect(again.connack.sessionPresent).toBe(true);
    again.c.send({ ...p, dup: true }); // [MQTT-4.4.0-1] the client resends its unacknowledged PUBLISH
    await until(() => commits.length === 2, 'the resent message to reach the sink again');
    commits[1]!.resolve();
    expect((await again.c.next('pubrec')).messageId).toBe(p.messageId);
  });

  it('answer a QoS 2 publish resent on a new connection while its first commit is still running only once that commit is done', async () => {
    h = startBroker();
    const commit = deferred();
    let accepts = 0;
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => (accepts++, commit.promise) });
    const opts = { clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await connect(h, 'sensor', opts);
    const p = publishPacket('sensors/t', 'precious', 2);
    first.c.send(p);
    await until(() => accepts === 1, 'the first accept');
    first.c.destroy();
    await until(() => h!.broker.connectionCount === 0, 'the drop');
    const again = await connect(h, 'sensor', opts);
    again.c.send({ ...p, dup: true });
    await ticks(30);
    expect(again.c.received.filter((x) => x.cmd === 'pubrec')).toEqual([]); // not committed yet
    commit.resolve();
    const rec = await again.c.next('pubrec');
    expect([rec.messageId, rec.reasonCode ?? 0]).toEqual([p.messageId, 0]);
    expect(accepts).toBe(1); // one message, stored once
  });

  it('answer a QoS 2 resend that waited for a failing commit with the failure (v5 PUBREC 0x97)', async () => {
    h = startBroker();
    const commit = deferred();
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => commit.promise });
    const opts = { clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await connect(h, 'sensor', opts);
    const p = publishPacket('sensors/t', 'precious', 2);
    first.c.send(p);
    await ticks(10);
    first.c.destroy();
    await until(() => h!.broker.connectionCount === 0, 'the drop');
    const again = await connect(h, 'sensor', opts);
    again.c.send({ ...p, dup: true });
    await ticks(10);
    commit.reject(new OutpostError('STORE_FULL', 'full'));
    const rec = await again.c.next('pubrec');
    expect([rec.messageId, rec.reasonCode]).toEqual([p.messageId, 0x97]);
  });

  it('close a 3.1.1 connection without PUBACK when accept rejects, so the client resends', async () => {
    h = startBroker();
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => Promise.reject(new Error('disk gone')) });
    const { c } = await connect(h, 'old', {}, 4);
    c.send(publishPacket('sensors/t', '1', 1));
    await c.waitClosed();
    expect(c.received.filter((x) => x.cmd === 'puback')).toEqual([]);
  });

  it('log the refusals of a 3.1.1 connection\'s publishes rate-limited, not one line per message', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    h = startBroker({}, undefined, log);
    // One failed commit refuses every publish it held: twenty in flight on one connection.
    const commit = deferred();
    h.broker.addDurableSink({ name: 'outbox', selects: () => true, accept: () => commit.promise });
    const { c } = await connect(h, 'burst', {}, 4);
    for (let i = 1; i <= 20; i++) c.send({ ...publishPacket('sensors/t', String(i), 1), messageId: i });
    await ticks(10);
    commit.reject(new Error('disk gone'));
    await c.waitClosed();
    await ticks(10);
    const refusals = lines.filter((l) => l.includes('not accepted by the store'));
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.length).toBeLessThanOrEqual(5);
    expect(refusals[0]).toContain('sensors/t');
  });

  it('are not consulted for topics they do not select', async () => {
    h = startBroker();
    let calls = 0;
    h.broker.addDurableSink({ name: 'outbox', selects: (m) => m.topic.startsWith('sensors/'), accept: async () => void calls++ });
    const { c } = await connect(h, 'dev');
    await publish(c, 'other/t', '1', 1);
    await publish(c, 'sensors/t', '1', 1);
    expect(calls).toBe(1);
    expect(takePublishes(c)).toEqual([]);
  });
});
