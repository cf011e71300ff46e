/**
 * MQTT 5 connection features: CONNACK properties, session expiry and takeover,
 * DISCONNECT semantics, Wills (delay included) and server shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { collect, connect, publish, subscribe, takePublishes, ticks, until } from '../helpers/flows.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('MQTT 5 CONNECT and CONNACK', () => {
  it('assigns a unique client identifier to a client that sent an empty one [MQTT-3.2.2-16]', async () => {
    h = startBroker();
    const a = await connect(h, '');
    const b = await connect(h, '');
    const idA = a.connack.properties?.assignedClientIdentifier;
    const idB = b.connack.properties?.assignedClientIdentifier;
    expect(idA).toMatch(/^outpost-[0-9a-f]{16}$/);
    expect(idB).toMatch(/^outpost-[0-9a-f]{16}$/);
    expect(idA).not.toBe(idB);
    // The assigned id is a real session: No Local compares against it.
    expect(await subscribe(a.c, [{ topic: 'self', qos: 0, nl: true }])).toEqual([0]);
    await publish(a.c, 'self', 'echo?', 0);
    expect(takePublishes(a.c)).toEqual([]);
  });

  it('does not send an Assigned Client Identifier when the client chose its id', async () => {
    h = startBroker();
    const { connack } = await connect(h, 'named');
    expect(connack.properties?.assignedClientIdentifier).toBeUndefined();
  });

  it('announces Receive Maximum, Maximum Packet Size and Topic Alias Maximum from the options', async () => {
    h = startBroker({ receiveMaximum: 20, maxPacketSize: 4096, topicAliasMaximum: 7 });
    const { connack } = await connect(h, 'c');
    expect(connack.reasonCode).toBe(0);
    expect(connack.sessionPresent).toBe(false);
    expect(connack.properties).toMatchObject({ receiveMaximum: 20, maximumPacketSize: 4096, topicAliasMaximum: 7 });
    expect(connack.properties?.serverKeepAlive).toBeUndefined();
    expect(connack.properties?.sessionExpiryInterval).toBeUndefined();
    expect(connack.properties?.responseInformation).toBeUndefined();
  });

  it.each([
    [120, 30],
    [0, 30],
  ])('answers a Keep Alive of %i with Server Keep Alive %i when max_keepalive is 30 s (§3.2.2.3.14)', async (asked, told) => {
    h = startBroker({ maxKeepalive: 30 });
    const { connack } = await connect(h, 'k', { keepalive: asked });
    expect(connack.properties?.serverKeepAlive).toBe(told);
  });

  it('keeps a Keep Alive below max_keepalive and sends no Server Keep Alive', async () => {
    h = startBroker({ maxKeepalive: 30 });
    const { connack } = await connect(h, 'k', { keepalive: 10 });
    expect(connack.properties?.serverKeepAlive).toBeUndefined();
  });

  it('enforces the Server Keep Alive it announced: silence for 1.5 × 30 s ends the connection with 0x8D', async () => {
    const clock = new FakeClock();
    h = startBroker({ maxKeepalive: 30 }, clock);
    const { c } = await connect(h, 'k', { keepalive: 600 });
    clock.advance(44_000);
    await ticks();
    expect(c.closed).toBe(false);
    clock.advance(1_000);
    const d = await c.next('disconnect');
    expect(d.reasonCode).toBe(0x8d);
    await c.waitClosed();
  });

  it('announces the capped Session Expiry Interval when the client asked for more than max_session_expiry', async () => {
    h = startBroker({ maxSessionExpiry: 100 });
    const capped = await connect(h, 'a', { properties: { sessionExpiryInterval: 1000 } });
    expect(capped.connack.properties?.sessionExpiryInterval).toBe(100);
    const within = await connect(h, 'b', { properties: { sessionExpiryInterval: 50 } });
    expect(within.connack.properties?.sessionExpiryInterval).toBeUndefined();
  });

  it('announces Retain Available 0 when retained messages are off, and refuses a retained Will with CONNACK 0x9A (§3.2.2.3.5)', async () => {
    h = startBroker({ retainAvailable: false });
    const { connack } = await connect(h, 'r');
    expect(connack.properties?.retainAvailable).toBe(false);
    const c = h.client(5);
    const refused = await c.connect({ clientId: 'w', will: { topic: 'wills/w', payload: Buffer.from('x'), qos: 0, retain: true } });
    expect(refused.reasonCode).toBe(0x9a);
    await c.waitClosed();
  });

  /** A raw v5 CONNECT with these property bytes (and, given, a Will with its own). */
  const rawConnect = (props: number[], will?: number[]): number[] => {
    const str = (t: string) => [0, t.length, ...Buffer.from(t)];
    const body = [...str('MQTT'), 5, will === undefined ? 0x02 : 0x06, 0, 10, props.length, ...props, ...str('dup'), ...(will === undefined ? [] : [will.length, ...will, ...str('w/t'), ...str('p')])];
    return [0x10, body.length, ...body];
  };

  it.each([
    ['Session Expiry Interval', [0x11, 0, 0, 0, 60, 0x11, 0, 0, 0, 60], undefined],
    ['Receive Maximum', [0x21, 0, 2, 0x21, 0, 2], undefined],
    ['Maximum Packet Size', [0x27, 0, 0, 0, 40, 0x27, 0, 0, 0, 40], undefined],
    ['Will Delay Interval (in the Will properties)', [], [0x18, 0, 0, 0, 5, 0x18, 0, 0, 0, 5]],
  ])('refuses a CONNECT with the %s twice with CONNACK 0x82, and the next client is served (§3.1.2.11)', async (_name, props, will) => {
    h = startBroker();
    const bad = h.client(5);
    bad.sendRaw(rawConnect(props, will));
    expect((await bad.next('connack')).reasonCode).toBe(0x82);
    await bad.waitClosed();
    expect(h.broker.metrics.violations.get('protocol-error')).toBe(1);
    expect(h.broker.sessionCount).toBe(0);
    const { connack } = await connect(h, 'next', { properties: { sessionExpiryInterval: 60 } });
    expect(connack.reasonCode).toBe(0);
  });

  it('refuses a CONNECT asking for enhanced authentication with CONNACK 0x8C and closes it [MQTT-4.12.0-1]', async () => {
    h = startBroker();
    const c = h.client(5);
    const ack = await c.connect({ clientId: 'scram', properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.from('abc') } });
    expect(ack.reasonCode).toBe(0x8c);
    await c.waitClosed();
    expect(h.broker.sessionCount).toBe(0);
  });

  it('sends Response Information only when the client requested it (§3.2.2.3.15)', async () => {
    h = startBroker();
    const asked = await connect(h, 'req', { properties: { requestResponseInformation: true } });
    const info = asked.connack.properties?.responseInformation;
    expect(typeof info).toBe('string');
    expect(info!.length).toBeGreaterThan(0);
    const notAsked = await connect(h, 'plain');
    expect(notAsked.connack.properties?.responseInformation).toBeUndefined();
  });
});

describe('MQTT 5 session expiry', () => {
  async function parkSession(harness: Harness, expiry: number) {
    const { c } = await connect(harness, 'sleeper', { clean: true, properties: { sessionExpiryInterval: expiry } });
    expect(await subscribe(c, 'news/#', 1)).toEqual([1]);
    c.send({ cmd: 'disconnect', reasonCode: 0 });
    await c.waitClosed();
    await until(() => harness.broker.connectionCount === 0, 'the broker to see the close');
  }

  it('keeps a session with expiry 60 s for 59 s: reconnecting resumes it with sessionPresent and the queued QoS 1 messages [MQTT-3.1.2-23]', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    await parkSession(h, 60);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'news/a', 'one', 1);
    await publish(pub, 'news/b', 'two', 1);
    clock.advance(59_000);
    const back = await connect(h, 'sleeper', { clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(back.connack.sessionPresent).toBe(true); // [MQTT-3.2.2-3]
    const got = await collect(back.c, 2, { ack: true });
    expect(got.map((p) => [p.topic, String(p.payload), p.qos])).toEqual([
      ['news/a', 'one', 1],
      ['news/b', 'two', 1],
    ]);
    // The subscription survived too.
    await publish(pub, 'news/c', 'three', 0);
    expect(String((await back.c.next('publish')).payload)).toBe('three');
  });

  it('ends a session with expiry 60 s after 61 s: the client gets sessionPresent 0 and no subscription remains', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    await parkSession(h, 60);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'news/a', 'lost', 1);
    expect(h.broker.sessionCount).toBe(2);
    clock.advance(61_000);
    expect(h.broker.sessionCount).toBe(1);
    expect(h.broker.metrics.drops.get('session-ended')).toBe(1);
    const back = await connect(h, 'sleeper', { clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(back.connack.sessionPresent).toBe(false);
    await publish(pub, 'news/b', 'after', 1);
    await ticks(20);
    expect(takePublishes(back.c)).toEqual([]);
  });

  it('discards an existing session when the client connects with Clean Start 1 [MQTT-3.1.2-4]', async () => {
    h = startBroker();
    await parkSession(h, 600);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'news/a', 'queued', 1);
    const back = await connect(h, 'sleeper', { clean: true, properties: { sessionExpiryInterval: 600 } });
    expect(back.connack.sessionPresent).toBe(false); // [MQTT-3.2.2-2]
    await publish(pub, 'news/b', 'live', 1);
    await ticks(20);
    expect(takePublishes(back.c)).toEqual([]);
  });

  it('ends a session whose expiry is 0 when the connection closes', async () => {
    h = startBroker();
    const { c } = await connect(h, 'brief');
    await subscribe(c, 't', 1);
    c.destroy();
    await until(() => h!.broker.sessionCount === 0, 'the session to end');
    const back = await connect(h, 'brief', { clean: false });
    expect(back.connack.sessionPresent).toBe(false);
  });

  it('uses the Session Expiry Interval sent with DISCONNECT instead of the one from CONNECT', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    const { c } = await connect(h, 'shift', { properties: { sessionExpiryInterval: 10 } });
    await subscribe(c, 't', 1);
    c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 100 } });
    await c.waitClosed();
    await until(() => h!.broker.connectionCount === 0, 'the close');
    clock.advance(50_000);
    const back = await connect(h, 'shift', { clean: false, properties: { sessionExpiryInterval: 10 } });
    expect(back.connack.sessionPresent).toBe(true);
  });
});

describe('MQTT 5 session takeover and DISCONNECT', () => {
  it('sends DISCONNECT 0x8E to the old connection and closes it when the same client id connects again [MQTT-3.1.4-3]', async () => {
    h = startBroker();
    const first = await connect(h, 'dup', { properties: { sessionExpiryInterval: 60 } });
    await subscribe(first.c, 'x', 1);
    const second = await connect(h, 'dup', { clean: false, properties: { sessionExpiryInterval: 60 } });
    const d = await first.c.next('disconnect');
    expect(d.reasonCode).toBe(0x8e);
    await first.c.waitClosed();
    expect(second.connack.sessionPresent).toBe(true);
    // The session now lives on the new connection.
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'x', 'to-new', 1);
    expect(String((await second.c.next('publish')).payload)).toBe('to-new');
  });

  it('closes a 3.1.1 connection that is taken over without sending it any packet', async () => {
    h = startBroker();
    const first = await connect(h, 'dup', {}, 4);
    await connect(h, 'dup', {}, 5);
    await first.c.waitClosed();
    expect(first.c.received).toEqual([]);
  });

  it('treats a non-zero Session Expiry Interval in DISCONNECT after 0 in CONNECT as a protocol error 0x82 (§3.14.2.2.2)', async () => {
    h = startBroker();
    const { c } = await connect(h, 'zero');
    c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
    const d = await c.next('disconnect');
    expect(d.reasonCode).toBe(0x82);
    await c.waitClosed();
    expect(h.broker.metrics.violations.get('protocol-error')).toBe(1);
  });

  it('still sends the DISCONNECT reason code, without the Reason String, to a client whose Maximum Packet Size the string would exceed [MQTT-3.14.2-3]', async () => {
    h = startBroker();
    const { c } = await connect(h, 'tiny', { properties: { maximumPacketSize: 16 } });
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/t', qos: 0, nl: true }] });
    const d = await c.next('disconnect');
    expect(d.reasonCode).toBe(0x82);
    expect(d.properties?.reasonString).toBeUndefined();
    await c.waitClosed();
  });

  it('explains a protocol error with a Reason String when it fits', async () => {
    h = startBroker();
    const { c } = await connect(h, 'roomy');
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/t', qos: 0, nl: true }] });
    const d = await c.next('disconnect');
    expect(d.reasonCode).toBe(0x82);
    expect(d.properties?.reasonString).toMatch(/No Local/i);
  });

  it('publishes the Will when the client disconnects with reason 0x04 (§3.14.2.1)', async () => {
    h = startBroker();
    const { c: watcher } = await connect(h, 'watcher');
    await subscribe(watcher, 'wills/#', 1);
    const { c } = await connect(h, 'dying', { will: { topic: 'wills/dying', payload: Buffer.from('gone'), qos: 1, retain: false } });
    c.send({ cmd: 'disconnect', reasonCode: 0x04 });
    await c.waitClosed();
    const w = await watcher.next('publish');
    expect([w.topic, String(w.payload), w.qos]).toEqual(['wills/dying', 'gone', 1]);
  });

  it('discards the Will when the client disconnects with reason 0x00 [MQTT-3.14.4-3]', async () => {
    h = startBroker();
    const { c: watcher } = await connect(h, 'watcher');
    await subscribe(watcher, 'wills/#', 1);
    const { c } = await connect(h, 'polite', { will: { topic: 'wills/polite', payload: Buffer.from('gone'), qos: 1, retain: false } });
    c.send({ cmd: 'disconnect', reasonCode: 0x00 });
    await c.waitClosed();
    await until(() => h!.broker.connectionCount === 1, 'the close');
    await ticks(20);
    expect(takePublishes(watcher)).toEqual([]);
  });

  it('publishes the Will with its properties when the connection drops', async () => {
    h = startBroker();
    const { c: watcher } = await connect(h, 'watcher');
    await subscribe(watcher, 'wills/#', 0);
    const { c } = await connect(h, 'dropped', {
      will: {
        topic: 'wills/dropped',
        payload: Buffer.from('{"online":false}'),
        qos: 0,
        retain: false,
        properties: { contentType: 'application/json', userProperties: { site: '17' } },
      },
    });
    c.destroy();
    const w = await watcher.next('publish');
    expect(String(w.payload)).toBe('{"online":false}');
    expect(w.properties?.contentType).toBe('application/json');
    expect(w.properties?.userProperties).toEqual({ site: '17' });
  });
});

describe('MQTT 5 Will Delay Interval', () => {
  async function setup(clock: FakeClock, willDelay: number, sessionExpiry: number) {
    h = startBroker({}, clock);
    const { c: watcher } = await connect(h, 'watcher');
    await subscribe(watcher, 'wills/#', 0);
    const { c } = await connect(h, 'late', {
      properties: { sessionExpiryInterval: sessionExpiry },
      will: { topic: 'wills/late', payload: Buffer.from('bye'), qos: 0, retain: false, properties: { willDelayInterval: willDelay } },
    });
    c.destroy();
    await until(() => h!.broker.connectionCount === 1, 'the drop');
    return watcher;
  }

  it('publishes the Will only once the Will Delay Interval has passed [MQTT-3.1.2-8]', async () => {
    const clock = new FakeClock();
    const watcher = await setup(clock, 30, 300);
    clock.advance(29_000);
    await ticks(20);
    expect(takePublishes(watcher)).toEqual([]);
    clock.advance(1_000);
    const w = await watcher.next('publish');
    expect([w.topic, String(w.payload)]).toEqual(['wills/late', 'bye']);
  });

  it('does not publish the Will when the client reconnects before the delay has passed [MQTT-3.1.3-9]', async () => {
    const clock = new FakeClock();
    const watcher = await setup(clock, 30, 300);
    clock.advance(10_000);
    const back = await connect(h!, 'late', { clean: false, properties: { sessionExpiryInterval: 300 } });
    expect(back.connack.sessionPresent).toBe(true);
    clock.advance(60_000);
    await ticks(20);
    expect(takePublishes(watcher)).toEqual([]);
  });

  it('publishes the Will when the session ends before the Will Delay Interval (§3.1.3.2.2)', async () => {
    const clock = new FakeClock();
    const watcher = await setup(clock, 30, 10);
    clock.advance(9_000);
    await ticks(20);
    expect(takePublishes(watcher)).toEqual([]);
    clock.advance(1_000);
    expect(String((await watcher.next('publish')).payload)).toBe('bye');
    clock.advance(60_000);
    await ticks(20);
    expect(takePublishes(watcher)).toEqual([]); // once only
  });

  it('starts the Will Message Expiry Interval when the delayed Will is published, not when the connection dropped (§3.1.3.2.4)', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    const { c: watcher } = await connect(h, 'watcher', { properties: { sessionExpiryInterval: 600 } });
    await subscribe(watcher, 'wills/#', 1);
    const { c } = await connect(h, 'late', {
      properties: { sessionExpiryInterval: 300 },
      will: { topic: 'wills/late', payload: Buffer.from('bye'), qos: 1, retain: false, properties: { willDelayInterval: 30, messageExpiryInterval: 20 } },
    });
    c.destroy();
    await until(() => h!.broker.connectionCount === 1, 'the drop');
    clock.advance(30_000);
    const w = await watcher.next('publish');
    expect([String(w.payload), w.properties?.messageExpiryInterval]).toEqual(['bye', 20]);
  });

  it('publishes a delayed Will at once when a new connection starts the session clean', async () => {
    const clock = new FakeClock();
    const watcher = await setup(clock, 30, 300);
    clock.advance(5_000);
    await connect(h!, 'late', { clean: true });
    expect(String((await watcher.next('publish')).payload)).toBe('bye');
  });
});

describe('server shutdown', () => {
  it('sends DISCONNECT 0x8B to MQTT 5 clients and closes every connection', async () => {
    h = startBroker();
    const { c: v5 } = await connect(h, 'five');
    const { c: v4 } = await connect(h, 'four', {}, 4);
    const closing = h.broker.close();
    const d = await v5.next('disconnect');
    expect(d.reasonCode).toBe(0x8b);
    await closing;
    await v5.waitClosed();
    await v4.waitClosed();
    expect(v4.received).toEqual([]);
    expect(h.broker.connectionCount).toBe(0);
  });

  it('does not publish Wills of clients it disconnects while shutting down', async () => {
    h = startBroker();
    const seen: string[] = [];
    h.broker.subscribe('wills/#', { kind: 'system', id: 'test' }, { qos: 0 }, (m) => void seen.push(m.topic));
    await connect(h, 'w', { will: { topic: 'wills/w', payload: Buffer.from('x'), qos: 0, retain: false } });
    await h.broker.close();
    await ticks(10);
    expect(seen).toEqual([]);
  });

  it('refuses new connections once closed', async () => {
    h = startBroker();
    await h.broker.close();
    const c = h.client(5);
    await c.waitClosed();
    expect(h.broker.metrics.connectionsRefused).toBe(1);
  });
});
