/**
 * MQTT 5 PUBLISH and SUBSCRIBE features: application properties end to end, message
 * expiry, topic aliases both ways, flow control towards the client, subscription
 * options and identifiers, shared subscriptions, SUBACK/UNSUBACK reason codes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { collect, connect, publish, publishPacket, subscribe, takePublishes, ticks, until } from '../helpers/flows.js';
import { userPairs, userPropertyPair } from '../helpers/wire.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('MQTT 5 application properties', () => {
  it('passes Payload Format Indicator, Content Type, Response Topic, Correlation Data and User Properties unaltered to a v5 subscriber [MQTT-3.3.2-4] [MQTT-3.3.2-15..-20]', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'props/#', 1);
    const { c: pub } = await connect(h, 'pub');
    const properties = {
      payloadFormatIndicator: true,
      contentType: 'application/json; charset=utf-8',
      responseTopic: 'reply/pub/1',
      correlationData: Buffer.from([0, 1, 2, 0xff]),
      userProperties: { site: '17', tag: ['a', 'b'] },
    };
    await publish(pub, 'props/x', '{"t":21.5}', 1, { properties });
    const got = await sub.next('publish');
    expect(got.topic).toBe('props/x');
    expect(String(got.payload)).toBe('{"t":21.5}');
    expect(got.properties).toEqual(properties);
  });

  it('forwards User Properties in the order they came, a repeated name between others and names that read as numbers included [MQTT-3.3.2-18]', async () => {
    h = startBroker();
    const plain = await connect(h, 'plain');
    const rich = await connect(h, 'rich', { properties: { topicAliasMaximum: 4 } }); // per-subscriber encoding
    await subscribe(plain.c, 'up/#', 0);
    rich.c.send({ cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 5 }, subscriptions: [{ topic: 'up/#', qos: 0 }] });
    await rich.c.next('suback');
    const wire: Buffer[][] = [[], []];
    plain.c.stream.on('data', (b: Buffer) => wire[0]!.push(b));
    rich.c.stream.on('data', (b: Buffer) => wire[1]!.push(b));
    const { c: pub } = await connect(h, 'pub');
    const props = [...userPropertyPair('a', '1'), ...userPropertyPair('b', '2'), ...userPropertyPair('a', '3'), ...userPropertyPair('10', 'x'), ...userPropertyPair('2', 'y')];
    const topic = [...Buffer.from('up/x')];
    const body = [0, topic.length, ...topic, props.length, ...props, ...Buffer.from('p')];
    pub.sendRaw([0x30, body.length, ...body]);
    await plain.c.next('publish');
    await rich.c.next('publish');
    const expected = ['a=1', 'b=2', 'a=3', '10=x', '2=y'];
    expect(userPairs(Buffer.concat(wire[0]!))).toEqual(expected);
    expect(userPairs(Buffer.concat(wire[1]!))).toEqual(expected);
  });

  it('publishes a Will with its User Properties in the order the CONNECT gave them [MQTT-3.1.3-10]', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'will/#', 0);
    const wire: Buffer[] = [];
    sub.stream.on('data', (b: Buffer) => wire.push(b));
    const dev = h.client(5);
    // mqtt-packet writes an object's pairs grouped by name; the order to keep is the wire's, so the CONNECT is written here.
    const wprops = [...userPropertyPair('a', '1'), ...userPropertyPair('b', '2'), ...userPropertyPair('a', '3')];
    const str = (x: string) => [0, x.length, ...Buffer.from(x)];
    const body = [...str('MQTT'), 5, 0x06, 0, 0, 0, ...str('dev'), wprops.length, ...wprops, ...str('will/dev'), ...str('gone')];
    dev.sendRaw([0x10, body.length, ...body]);
    await dev.next('connack');
    dev.destroy();
    await sub.next('publish');
    expect(userPairs(Buffer.concat(wire))).toEqual(['a=1', 'b=2', 'a=3']);
  });

  it('strips MQTT 5 properties when delivering to a 3.1.1 subscriber, keeping topic and payload', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'old', {}, 4);
    await subscribe(sub, 'props/#', 0);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'props/y', 'plain', 0, { properties: { contentType: 'text/plain', userProperties: { a: '1' } } });
    const got = await sub.next('publish');
    expect([got.topic, String(got.payload)]).toEqual(['props/y', 'plain']);
    expect(got.properties).toBeUndefined();
  });

  it('accepts a payload marked UTF-8 that is valid UTF-8 and forwards the indicator', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'u', 0);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'u', 'grüße ✓', 1, { properties: { payloadFormatIndicator: true } });
    const got = await sub.next('publish');
    expect(String(got.payload)).toBe('grüße ✓');
    expect(got.properties?.payloadFormatIndicator).toBe(true);
  });

  it.each([
    [1, 'puback'],
    [2, 'pubrec'],
  ] as const)('refuses a QoS %i payload marked UTF-8 that is not valid UTF-8 with %s 0x99 and does not deliver it (§3.3.2.3.2)', async (qos, ack) => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'u', 1);
    const { c: pub } = await connect(h, 'pub');
    const p = publishPacket('u', Buffer.from([0x61, 0xff, 0xfe]), qos, { properties: { payloadFormatIndicator: true } });
    pub.send(p);
    const answer = await pub.next(ack);
    expect(answer.messageId).toBe(p.messageId);
    expect(answer.reasonCode).toBe(0x99);
    // The client stays connected and can go on publishing.
    await publish(pub, 'u', 'fine', 1);
    const got = await sub.next('publish');
    expect(String(got.payload)).toBe('fine');
    expect(takePublishes(sub)).toEqual([]);
  });
});

describe('MQTT 5 message expiry', () => {
  async function offlineSubscriber(harness: Harness) {
    const { c } = await connect(harness, 'away', { properties: { sessionExpiryInterval: 3600 } });
    await subscribe(c, 'exp/#', 1);
    c.send({ cmd: 'disconnect', reasonCode: 0 });
    await c.waitClosed();
    await until(() => harness.broker.connectionCount === 0, 'the close');
  }

  it('sends a live message with the Message Expiry Interval it was published with', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'exp/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'exp/live', 'x', 1, { properties: { messageExpiryInterval: 10 } });
    expect((await sub.next('publish')).properties?.messageExpiryInterval).toBe(10);
  });

  it('decrements the Message Expiry Interval by the time the message waited for an offline subscriber [MQTT-3.3.2-6]', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    await offlineSubscriber(h);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'exp/a', 'ten', 1, { properties: { messageExpiryInterval: 10 } });
    await publish(pub, 'exp/b', 'forever', 1);
    clock.advance(4_000);
    const { c } = await connect(h, 'away', { clean: false, properties: { sessionExpiryInterval: 3600 } });
    const [a, b] = await collect(c, 2, { ack: true });
    expect([a!.topic, a!.properties?.messageExpiryInterval]).toEqual(['exp/a', 6]);
    expect(b!.topic).toBe('exp/b');
    expect(b!.properties?.messageExpiryInterval).toBeUndefined();
  });

  it('drops a queued message whose expiry passed while the subscriber was offline [MQTT-3.3.2-5]', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    await offlineSubscriber(h);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'exp/old', 'stale', 1, { properties: { messageExpiryInterval: 5 } });
    await publish(pub, 'exp/new', 'fresh', 1, { properties: { messageExpiryInterval: 60 } });
    clock.advance(6_000);
    const { c } = await connect(h, 'away', { clean: false, properties: { sessionExpiryInterval: 3600 } });
    const [only] = await collect(c, 1, { ack: true });
    expect([only!.topic, only!.properties?.messageExpiryInterval]).toEqual(['exp/new', 54]);
    await ticks(20);
    expect(takePublishes(c)).toEqual([]);
    expect(h.broker.metrics.drops.get('expired')).toBe(1);
  });

  it('resends an unacknowledged QoS 2 message after a reconnect even when its expiry passed meanwhile: its delivery had started [MQTT-4.4.0-1]', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    const opts = { properties: { sessionExpiryInterval: 3600 } };
    const first = await connect(h, 'away', opts);
    await subscribe(first.c, 'exp/#', 2);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'exp/q2', 'started', 2, { properties: { messageExpiryInterval: 5 } });
    const sent = await first.c.next('publish'); // its PUBREC is lost with the connection
    first.c.destroy();
    await until(() => h!.broker.connectionCount === 1, 'the drop');
    clock.advance(10_000);
    const { c } = await connect(h, 'away', { clean: false, ...opts });
    const again = await c.next('publish');
    expect([again.messageId, again.dup, String(again.payload), again.properties?.messageExpiryInterval]).toEqual([sent.messageId, true, 'started', 0]);
  });

  it('drops a message that expires while it waits for the Receive Maximum window, and sends the next with its remaining expiry', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    const { c: sub } = await connect(h, 'slow', { properties: { receiveMaximum: 1 } });
    await subscribe(sub, 'exp/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'exp/1', 'first', 1);
    await publish(pub, 'exp/2', 'short', 1, { properties: { messageExpiryInterval: 5 } });
    await publish(pub, 'exp/3', 'long', 1, { properties: { messageExpiryInterval: 100 } });
    const first = await sub.next('publish');
    clock.advance(10_000);
    sub.send({ cmd: 'puback', messageId: first.messageId });
    const next = await sub.next('publish');
    expect([next.topic, next.properties?.messageExpiryInterval]).toEqual(['exp/3', 90]);
    expect(h.broker.metrics.drops.get('expired')).toBe(1);
  });

  it('delivers a retained message with its remaining expiry, and no longer once it expired', async () => {
    const clock = new FakeClock();
    h = startBroker({}, clock);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'exp/ret', 'kept', 1, { retain: true, properties: { messageExpiryInterval: 10 } });
    clock.advance(4_000);
    const { c: early } = await connect(h, 'early');
    await subscribe(early, 'exp/#', 1);
    const got = await early.next('publish');
    expect([got.topic, String(got.payload), got.retain, got.properties?.messageExpiryInterval]).toEqual(['exp/ret', 'kept', true, 6]);
    clock.advance(7_000);
    const { c: late } = await connect(h, 'late');
    await subscribe(late, 'exp/#', 1);
    await ticks(20);
    expect(takePublishes(late)).toEqual([]);
  });
});

describe('MQTT 5 retained messages switched off', () => {
  it('disconnects with 0x9A a client that publishes with RETAIN when Retain Available is 0 (§3.3.1.3)', async () => {
    h = startBroker({ retainAvailable: false });
    const { c } = await connect(h, 'r');
    c.send(publishPacket('t', 'x', 0, { retain: true }));
    expect((await c.next('disconnect')).reasonCode).toBe(0x9a);
  });
});

describe('MQTT 5 topic aliases from the client', () => {
  it('resolves a topic alias set by the client and used later with an empty topic (§3.3.2.3.4)', async () => {
    h = startBroker({ topicAliasMaximum: 4 });
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'very/long/topic/name', 0);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'very/long/topic/name', 'first', 1, { properties: { topicAlias: 3 } });
    await publish(pub, '', 'second', 1, { properties: { topicAlias: 3 } });
    const got = await collect(sub, 2);
    expect(got.map((p) => [p.topic, String(p.payload)])).toEqual([
      ['very/long/topic/name', 'first'],
      ['very/long/topic/name', 'second'],
    ]);
    expect(got.every((p) => p.properties?.topicAlias === undefined)).toBe(true);
  });

  it('lets the client remap an alias to another topic', async () => {
    h = startBroker({ topicAliasMaximum: 4 });
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'm/#', 0);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'm/one', '1', 0, { properties: { topicAlias: 1 } });
    await publish(pub, 'm/two', '2', 0, { properties: { topicAlias: 1 } });
    await publish(pub, '', '3', 0, { properties: { topicAlias: 1 } });
    expect((await collect(sub, 3)).map((p) => p.topic)).toEqual(['m/one', 'm/two', 'm/two']);
  });

  it('disconnects with 0x82 a client that uses an alias it never set', async () => {
    h = startBroker({ topicAliasMaximum: 4 });
    const { c } = await connect(h, 'pub');
    c.send(publishPacket('', 'x', 0, { properties: { topicAlias: 2 } }));
    expect((await c.next('disconnect')).reasonCode).toBe(0x82);
    await c.waitClosed();
  });

  it.each([0, 5])('disconnects with 0x94 a client that sends Topic Alias %i outside 1..Topic Alias Maximum [MQTT-3.3.2-8] [MQTT-3.3.2-9]', async (alias) => {
    h = startBroker({ topicAliasMaximum: 4 });
    const { c } = await connect(h, 'pub');
    c.send(publishPacket('a/b', 'x', 0, { properties: { topicAlias: alias } }));
    expect((await c.next('disconnect')).reasonCode).toBe(0x94);
    await c.waitClosed();
  });
});

describe('MQTT 5 topic aliases to the client', () => {
  it('sends the topic once with an alias, then an empty topic with the alias, to a client that announced Topic Alias Maximum', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub', { properties: { topicAliasMaximum: 5 } });
    await subscribe(sub, 'alias/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'alias/temperature', 'a', 0);
    await publish(pub, 'alias/temperature', 'b', 1);
    await publish(pub, 'alias/humidity', 'c', 0);
    const [first, second, third] = await collect(sub, 3, { ack: true });
    expect(first!.topic).toBe('alias/temperature');
    const alias = first!.properties?.topicAlias;
    expect(alias).toBeGreaterThanOrEqual(1);
    expect(alias).toBeLessThanOrEqual(5);
    expect(second!.topic).toBe('');
    expect(second!.properties?.topicAlias).toBe(alias);
    expect(String(second!.payload)).toBe('b');
    expect(third!.topic).toBe('alias/humidity');
    expect(third!.properties?.topicAlias).not.toBe(alias);
  });

  it('never uses more aliases than the client allowed [MQTT-3.3.2-11]', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub', { properties: { topicAliasMaximum: 1 } });
    await subscribe(sub, 'n/#', 0);
    const { c: pub } = await connect(h, 'pub');
    for (const t of ['n/1', 'n/2', 'n/1', 'n/2']) await publish(pub, t, t, 0);
    const got = await collect(sub, 4);
    expect(got.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
      ['n/1', 1],
      ['n/2', undefined],
      ['', 1],
      ['n/2', undefined],
    ]);
  });

  it('sends no Topic Alias to a client that did not announce a Topic Alias Maximum', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'n/#', 0);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'n/1', 'a', 0);
    await publish(pub, 'n/1', 'b', 0);
    const got = await collect(sub, 2);
    expect(got.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
      ['n/1', undefined],
      ['n/1', undefined],
    ]);
  });
});

describe('MQTT 5 flow control towards the client', () => {
  it('keeps at most Receive Maximum (2) QoS 1 messages unacknowledged and sends the rest in order after PUBACKs [MQTT-3.3.4-9]', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'slow', { properties: { receiveMaximum: 2 } });
    await subscribe(sub, 'rm', 1);
    const { c: pub } = await connect(h, 'pub');
    for (let i = 1; i <= 5; i++) await publish(pub, 'rm', `m${i}`, 1);
    const first = await collect(sub, 2);
    await ticks(30);
    expect(takePublishes(sub)).toEqual([]); // window full
    const seen = first.map((p) => String(p.payload));
    let outstanding = first;
    while (seen.length < 5) {
      const acked = outstanding.shift()!;
      sub.send({ cmd: 'puback', messageId: acked.messageId });
      const next = await sub.next('publish');
      outstanding.push(next);
      seen.push(String(next.payload));
      await ticks(10);
      expect(takePublishes(sub)).toEqual([]); // still never more than 2 outstanding
    }
    expect(seen).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    outstanding = [];
  });

  it('keeps a QoS 2 message in the Receive Maximum window until PUBCOMP, not just PUBREC (§4.9)', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'slow', { properties: { receiveMaximum: 1 } });
    await subscribe(sub, 'rm', 2);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'rm', 'first', 2);
    await publish(pub, 'rm', 'second', 2);
    const first = await sub.next('publish');
    expect(String(first.payload)).toBe('first');
    sub.send({ cmd: 'pubrec', messageId: first.messageId });
    expect((await sub.next('pubrel')).messageId).toBe(first.messageId);
    await ticks(20);
    expect(takePublishes(sub)).toEqual([]); // PUBREL outstanding: still in flight
    sub.send({ cmd: 'pubcomp', messageId: first.messageId });
    expect(String((await sub.next('publish')).payload)).toBe('second');
  });

  it('resends unacknowledged QoS 1 messages after a reconnect with DUP, the same packet id and the full topic, not a stale alias [MQTT-4.4.0-1]', async () => {
    h = startBroker();
    const opts = { properties: { sessionExpiryInterval: 60, topicAliasMaximum: 4 } };
    const first = await connect(h, 'flaky', opts);
    await subscribe(first.c, 'resend/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'resend/a', 'one', 1);
    await publish(pub, 'resend/a', 'two', 1);
    const [p1, p2] = await collect(first.c, 2); // not acknowledged
    expect(p2!.topic).toBe(''); // the second one used the alias on that connection
    first.c.destroy();
    await until(() => h!.broker.connectionCount === 1, 'the drop');
    const again = await connect(h, 'flaky', { clean: false, ...opts });
    expect(again.connack.sessionPresent).toBe(true);
    const [r1, r2] = await collect(again.c, 2);
    expect([r1!.messageId, r1!.dup, r1!.topic, String(r1!.payload)]).toEqual([p1!.messageId, true, 'resend/a', 'one']);
    expect([r2!.messageId, r2!.dup, String(r2!.payload)]).toEqual([p2!.messageId, true, 'two']);
    // A topic alias, if any, must be one this connection has already seen set.
    expect(r1!.topic.length).toBeGreaterThan(0);
  });

  it('resends the unacknowledged messages of a resumed session only up to the new connection\'s smaller Receive Maximum, the rest in order as PUBACKs come [MQTT-3.3.4-9] [MQTT-4.6.0-1]', async () => {
    h = startBroker();
    const first = await connect(h, 'shrinks', { properties: { sessionExpiryInterval: 60, receiveMaximum: 6 } });
    await subscribe(first.c, 'rm/#', 1);
    const { c: pub } = await connect(h, 'pub');
    for (let i = 1; i <= 8; i++) await publish(pub, 'rm/x', `m${i}`, 1);
    expect(await collect(first.c, 6)).toHaveLength(6); // none acknowledged
    first.c.destroy();
    await until(() => h!.broker.connectionCount === 1, 'the drop');
    const again = await connect(h, 'shrinks', { clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 2 } });
    expect(again.connack.sessionPresent).toBe(true);
    let outstanding = await collect(again.c, 2);
    await ticks(30);
    expect(takePublishes(again.c)).toEqual([]); // 2 outstanding: the other 4 resends wait
    const seen = outstanding.map((p) => `${String(p.payload)}${p.dup ? '+dup' : ''}`);
    while (seen.length < 8) {
      again.c.send({ cmd: 'puback', messageId: outstanding.shift()!.messageId });
      const next = await again.c.next('publish');
      outstanding.push(next);
      seen.push(`${String(next.payload)}${next.dup ? '+dup' : ''}`);
      await ticks(10);
      expect(takePublishes(again.c)).toEqual([]); // never more than 2 outstanding
    }
    expect(seen).toEqual(['m1+dup', 'm2+dup', 'm3+dup', 'm4+dup', 'm5+dup', 'm6+dup', 'm7', 'm8']);
    outstanding = [];
  });

  it('disconnects with 0x93 a client that sends more unacknowledged QoS 2 publishes than the Receive Maximum it was given [MQTT-3.3.4-8]', async () => {
    h = startBroker({ receiveMaximum: 2 });
    const { c, connack } = await connect(h, 'greedy');
    expect(connack.properties?.receiveMaximum).toBe(2);
    for (let i = 0; i < 2; i++) {
      const p = publishPacket('rm/in', `${i}`, 2);
      c.send(p);
      expect((await c.next('pubrec')).messageId).toBe(p.messageId);
    }
    c.send(publishPacket('rm/in', 'one too many', 2));
    expect((await c.next('disconnect')).reasonCode).toBe(0x93);
  });

  it('does not count QoS 0 messages against Receive Maximum', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'slow', { properties: { receiveMaximum: 1 } });
    await subscribe(sub, 'rm', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'rm', 'q1', 1);
    await sub.next('publish'); // not acknowledged
    await publish(pub, 'rm', 'q0', 0);
    expect(String((await sub.next('publish')).payload)).toBe('q0');
  });

  it.each([0, 1] as const)('never sends a QoS %i message larger than the client Maximum Packet Size and still sends the others [MQTT-3.1.2-24] [MQTT-3.1.2-25]', async (qos) => {
    h = startBroker();
    const { c: sub } = await connect(h, 'tiny', { properties: { maximumPacketSize: 64 } });
    await subscribe(sub, 'mp/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'mp/big', Buffer.alloc(200, 0x41), qos);
    await publish(pub, 'mp/small', 'ok', qos);
    const got = await collect(sub, 1, { ack: true });
    expect(got[0]!.topic).toBe('mp/small');
    await ticks(20);
    expect(takePublishes(sub)).toEqual([]);
    expect(h.broker.metrics.drops.get('too-large-for-client')).toBe(1);
  });

  it('lets a QoS 1 message dropped for size free its place in the Receive Maximum window', async () => {
    h = startBroker();
    const { c: sub } = await connect(h, 'tiny', { properties: { maximumPacketSize: 64, receiveMaximum: 1 } });
    await subscribe(sub, 'mp/#', 1);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'mp/big', Buffer.alloc(200, 0x41), 1);
    await publish(pub, 'mp/small', 'ok', 1);
    expect((await sub.next('publish')).topic).toBe('mp/small');
  });
});

describe('MQTT 5 subscription options', () => {
  it('does not send a client its own publish on a No Local subscription, but does send others [MQTT-3.8.3-3]', async () => {
    h = startBroker();
    const { c: me } = await connect(h, 'me');
    await subscribe(me, [{ topic: 'chat', qos: 1, nl: true }]);
    const { c: other } = await connect(h, 'other');
    await publish(me, 'chat', 'mine', 1);
    await publish(other, 'chat', 'theirs', 1);
    const got = await collect(me, 1, { ack: true });
    expect(String(got[0]!.payload)).toBe('theirs');
    await ticks(20);
    expect(takePublishes(me)).toEqual([]);
  });

  it('sends a client its own publish when No Local is not set', async () => {
    h = startBroker();
    const { c: me } = await connect(h, 'me');
    await subscribe(me, [{ topic: 'chat', qos: 0, nl: false }]);
    await publish(me, 'chat', 'mine', 0);
    expect(String((await me.next('publish')).payload)).toBe('mine');
  });

  it('keeps RETAIN=1 on live messages with Retain As Published and clears it without [MQTT-3.3.1-12] [MQTT-3.3.1-13]', async () => {
    h = startBroker();
    const { c: rap } = await connect(h, 'rap');
    await subscribe(rap, [{ topic: 'r/live', qos: 0, rap: true }]);
    const { c: plain } = await connect(h, 'plain');
    await subscribe(plain, [{ topic: 'r/live', qos: 0, rap: false }]);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'r/live', 'state', 0, { retain: true });
    expect((await rap.next('publish')).retain).toBe(true);
    expect((await plain.next('publish')).retain).toBe(false);
  });

  it('sends retained messages on every subscribe with Retain Handling 0 [MQTT-3.3.1-9]', async () => {
    h = startBroker();
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'r/x', 'kept', 1, { retain: true });
    const { c } = await connect(h, 'rh0');
    await subscribe(c, [{ topic: 'r/#', qos: 1, rh: 0 }]);
    expect((await c.next('publish')).retain).toBe(true);
    await subscribe(c, [{ topic: 'r/#', qos: 1, rh: 0 }]);
    const again = await c.next('publish');
    expect([again.topic, again.retain]).toEqual(['r/x', true]);
  });

  it('sends retained messages only for a new subscription with Retain Handling 1 [MQTT-3.3.1-10]', async () => {
    h = startBroker();
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'r/x', 'kept', 1, { retain: true });
    const { c } = await connect(h, 'rh1');
    await subscribe(c, [{ topic: 'r/#', qos: 1, rh: 1 }]);
    const got = await c.next('publish');
    c.send({ cmd: 'puback', messageId: got.messageId });
    expect(got.retain).toBe(true);
    await subscribe(c, [{ topic: 'r/#', qos: 1, rh: 1 }]);
    await ticks(20);
    expect(takePublishes(c)).toEqual([]);
  });

  it('never sends retained messages on subscribe with Retain Handling 2 [MQTT-3.3.1-11]', async () => {
    h = startBroker();
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'r/x', 'kept', 1, { retain: true });
    const { c } = await connect(h, 'rh2');
    await subscribe(c, [{ topic: 'r/#', qos: 1, rh: 2 }]);
    await ticks(20);
    expect(takePublishes(c)).toEqual([]);
    // Live messages still flow.
    await publish(pub, 'r/x', 'new', 1);
    expect(String((await c.next('publish')).payload)).toBe('new');
  });
});

describe('MQTT 5 subscription identifiers', () => {
  it('sends the Subscription Identifier of the matching subscription with each message [MQTT-3.3.4-3]', async () => {
    h = startBroker();
    const { c } = await connect(h, 'ids');
    await subscribe(c, 'sid/+', 1, { subscriptionIdentifier: 7 });
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'sid/a', 'x', 0);
    expect((await c.next('publish')).properties?.subscriptionIdentifier).toBe(7);
  });

  it('sends one message carrying both identifiers when two subscriptions overlap, at the higher QoS [MQTT-3.3.4-4]', async () => {
    h = startBroker();
    const { c } = await connect(h, 'ids');
    await subscribe(c, 'sid/+', 0, { subscriptionIdentifier: 1 });
    await subscribe(c, 'sid/#', 1, { subscriptionIdentifier: 2 });
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'sid/a', 'x', 1);
    const got = await c.next('publish');
    expect(got.qos).toBe(1);
    expect([...(got.properties?.subscriptionIdentifier as number[])].sort()).toEqual([1, 2]);
    await ticks(20);
    expect(takePublishes(c)).toEqual([]); // one copy only
  });

  it('sends the identifier with retained messages delivered on subscribe', async () => {
    h = startBroker();
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'sid/r', 'kept', 0, { retain: true });
    const { c } = await connect(h, 'ids');
    await subscribe(c, 'sid/#', 0, { subscriptionIdentifier: 42 });
    const got = await c.next('publish');
    expect([got.retain, got.properties?.subscriptionIdentifier]).toEqual([true, 42]);
  });

  it('replaces the identifier when the same filter is subscribed again, and drops it when the new SUBSCRIBE has none', async () => {
    h = startBroker();
    const { c } = await connect(h, 'ids');
    await subscribe(c, 'sid/x', 0, { subscriptionIdentifier: 3 });
    await subscribe(c, 'sid/x', 0, { subscriptionIdentifier: 4 });
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'sid/x', '1', 0);
    expect((await c.next('publish')).properties?.subscriptionIdentifier).toBe(4);
    await subscribe(c, 'sid/x', 0);
    await publish(pub, 'sid/x', '2', 0);
    expect((await c.next('publish')).properties?.subscriptionIdentifier).toBeUndefined();
  });

  it('treats Subscription Identifier 0 as a protocol error (§3.8.2.1.2)', async () => {
    h = startBroker();
    const { c } = await connect(h, 'ids');
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }], properties: { subscriptionIdentifier: 0 } });
    expect((await c.next('disconnect')).reasonCode).toBe(0x82);
  });
});

describe('MQTT 5 shared subscriptions', () => {
  it('sends each message to exactly one member of the group, spreading them over the members (§4.8.2)', async () => {
    h = startBroker();
    const { c: m1 } = await connect(h, 'm1');
    const { c: m2 } = await connect(h, 'm2');
    const { c: all } = await connect(h, 'all');
    expect(await subscribe(m1, '$share/workers/jobs/+', 1)).toEqual([1]);
    expect(await subscribe(m2, '$share/workers/jobs/+', 1)).toEqual([1]);
    await subscribe(all, 'jobs/+', 1);
    const { c: pub } = await connect(h, 'pub');
    for (let i = 0; i < 10; i++) await publish(pub, 'jobs/x', `j${i}`, 1);
    const everything = await collect(all, 10, { ack: true });
    expect(everything.map((p) => String(p.payload))).toEqual([...Array(10).keys()].map((i) => `j${i}`));
    await ticks(30);
    const got1 = takePublishes(m1).map((p) => String(p.payload));
    const got2 = takePublishes(m2).map((p) => String(p.payload));
    expect([...got1, ...got2].sort()).toEqual([...Array(10).keys()].map((i) => `j${i}`).sort());
    expect(got1.length).toBeGreaterThan(0);
    expect(got2.length).toBeGreaterThan(0);
  });

  it('delivers to different groups independently', async () => {
    h = startBroker();
    const { c: a } = await connect(h, 'a');
    const { c: b } = await connect(h, 'b');
    await subscribe(a, '$share/g1/t', 0);
    await subscribe(b, '$share/g2/t', 0);
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 't', 'x', 0);
    expect(String((await a.next('publish')).payload)).toBe('x');
    expect(String((await b.next('publish')).payload)).toBe('x');
  });

  it('sends no retained messages when a shared subscription is made (§4.8.2)', async () => {
    h = startBroker();
    const { c: pub } = await connect(h, 'pub');
    await publish(pub, 'jobs/r', 'kept', 1, { retain: true });
    const { c } = await connect(h, 'member');
    await subscribe(c, '$share/g/jobs/#', 1);
    await ticks(20);
    expect(takePublishes(c)).toEqual([]);
  });

  it('stops delivering to a member after it unsubscribes from the shared filter', async () => {
    h = startBroker();
    const { c: m1 } = await connect(h, 'm1');
    const { c: m2 } = await connect(h, 'm2');
    await subscribe(m1, '$share/g/t', 0);
    await subscribe(m2, '$share/g/t', 0);
    m2.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: ['$share/g/t'] });
    expect((await m2.next('unsuback')).granted).toEqual([0]);
    const { c: pub } = await connect(h, 'pub');
    for (let i = 0; i < 4; i++) await publish(pub, 't', `${i}`, 0);
    expect((await collect(m1, 4)).map((p) => String(p.payload))).toEqual(['0', '1', '2', '3']);
    expect(takePublishes(m2)).toEqual([]);
  });

  it('hands the QoS 1 messages a member never acknowledged to another member of the group when that member\'s session ends (§4.8.2)', async () => {
    h = startBroker({ maxInflight: 2 });
    const { c: keeper } = await connect(h, 'keeper');
    const { c: leaver } = await connect(h, 'leaver'); // Session Expiry 0: its session ends with the connection
    await subscribe(keeper, '$share/g/jobs/#', 1);
    await subscribe(leaver, '$share/g/jobs/#', 1);
    const { c: pub } = await connect(h, 'pub');
    for (let i = 0; i < 8; i++) await publish(pub, 'jobs/x', `j${i}`, 1);
    await ticks(30);
    const kept = takePublishes(keeper);
    for (const p of kept) keeper.send({ cmd: 'puback', messageId: p.messageId });
    const taken = takePublishes(leaver); // 2 inflight, the rest of its share queued; none acknowledged
    expect(taken).toHaveLength(2);
    leaver.destroy();
    await until(() => h!.broker.connectionCount === 2, 'the drop');
    const handed = await collect(keeper, 8 - kept.length, { ack: true });
    const all = [...kept, ...handed].map((p) => String(p.payload)).sort();
    expect(all).toEqual([...Array(8).keys()].map((i) => `j${i}`));
    await ticks(20);
    expect(takePublishes(keeper)).toEqual([]); // each once
  });

  it('treats No Local on a shared subscription as a protocol error 0x82 [MQTT-3.8.3-4]', async () => {
    h = startBroker();
    const { c } = await connect(h, 'nl');
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/t', qos: 0, nl: true }] });
    expect((await c.next('disconnect')).reasonCode).toBe(0x82);
    await c.waitClosed();
  });
});

describe('MQTT 5 SUBACK and UNSUBACK reason codes', () => {
  it('answers an invalid filter with 0x8F and still grants the valid ones of the same SUBSCRIBE (§3.9.3)', async () => {
    h = startBroker();
    const { c } = await connect(h, 's');
    const granted = await subscribe(c, [
      { topic: 'ok/+', qos: 1 },
      { topic: 'bad/#/x', qos: 1 },
      { topic: 'bad+', qos: 0 },
      { topic: 'ok2', qos: 2 },
    ]);
    expect(granted).toEqual([1, 0x8f, 0x8f, 2]);
  });

  it('answers UNSUBSCRIBE with 0x00 for an existing subscription and 0x11 for none (§3.11.3)', async () => {
    h = startBroker();
    const { c } = await connect(h, 'u');
    await subscribe(c, 'here', 0);
    c.send({ cmd: 'unsubscribe', messageId: 5, unsubscriptions: ['here', 'nowhere'] });
    const ack = await c.next('unsuback');
    expect(ack.messageId).toBe(5);
    expect(ack.granted).toEqual([0x00, 0x11]);
    c.send({ cmd: 'unsubscribe', messageId: 6, unsubscriptions: ['here'] });
    expect((await c.next('unsuback')).granted).toEqual([0x11]);
  });
});
