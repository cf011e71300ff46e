import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness;
beforeEach(async () => {
  h = await startSnGateway('predefined_topics: { 3: cmd/all }\nmax_topics_per_client: 3');
});
afterEach(async () => h.close());

const local = (topic: string, payload: string, qos: 0 | 1 | 2 = 0, retain = false) => h.local(topic, payload, qos, retain);

describe('MQTT-SN SUBSCRIBE and delivery to sensors', () => {
  it('returns the topic id in SUBACK for a plain name and publishes with it, without REGISTER', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    const ack = await c.subscribe('cmd/s1', 1);
    expect(ack).toMatchObject({ returnCode: 0, qos: 1 });
    expect(ack.topicId).toBeGreaterThan(0);
    local('cmd/s1', 'go', 1);
    const p = await c.next(MsgType.PUBLISH);
    expect(p).toMatchObject({ topicIdType: 0, topicId: ack.topicId, qos: 1 });
    expect(p.payload.toString()).toBe('go');
    expect(c.topicIds.size).toBe(0);
  });

  it('answers a wildcard SUBSCRIBE with TopicId 0x0000 and REGISTERs each new topic before its PUBLISH', async () => {
    const c = await h.client();
    await c.connect('s1');
    expect((await c.subscribe('cmd/#', 1)).topicId).toBe(0);
    local('cmd/a/b', 'one', 1);
    const reg = await c.next(MsgType.REGISTER);
    expect(reg.topicName).toBe('cmd/a/b');
    expect([0, 0xffff]).not.toContain(reg.topicId);
    // No PUBLISH until the REGACK.
    expect(await c.none(MsgType.PUBLISH, 150)).toBe(true);
    c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    const p = await c.next(MsgType.PUBLISH);
    expect(p).toMatchObject({ topicIdType: 0, topicId: reg.topicId });
    c.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    // The second message on the same topic needs no REGISTER.
    local('cmd/a/b', 'two', 1);
    expect((await c.next(MsgType.PUBLISH)).payload.toString()).toBe('two');
    expect(c.received.filter((x) => x.type === MsgType.REGISTER)).toHaveLength(0);
  });

  it('uses a predefined id or a short name when the client knows one, without REGISTER', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    expect(await c.subscribe({ predefined: 3 }, 0)).toMatchObject({ topicId: 3, returnCode: 0 });
    expect(await c.subscribe({ short: 'xy' }, 0)).toMatchObject({ topicId: 0, returnCode: 0 });
    local('cmd/all', 'p');
    local('xy', 's');
    await until(() => c.publishes.length === 2, 'two publishes');
    expect(c.publishes.map((p) => [p.topicIdType, p.topicId])).toEqual([[1, 3], [2, 0x7879]]);
    expect(c.topicIds.size).toBe(0);
  });

  it('publishes with the topic id its SUBACK announced when a client subscribes by name to a topic that is also predefined', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    const ack = await c.subscribe('cmd/all', 0);
    expect(ack.topicId).not.toBe(0);
    local('cmd/all', 'p');
    await until(() => c.publishes.length === 1, 'the publish');
    expect([c.publishes[0]!.topicIdType, c.publishes[0]!.topicId]).toEqual([0, ack.topicId]);
  });

  it('refuses a short name that is not a valid topic filter with SUBACK 0x02, and takes one that is', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    for (const short of ['a#', '+a', '#\u0000', '\u00ff\u00fe']) {
      expect(await c.subscribe({ short }, 1), JSON.stringify(short)).toMatchObject({ returnCode: ReturnCode.INVALID_TOPIC_ID });
    }
    expect(await c.subscribe({ short: '/#' }, 0)).toMatchObject({ topicId: 0, returnCode: 0 });
    local('/x', 'p');
    await until(() => c.publishes.length === 1, 'the publish on /x');
    expect(h.gw.metrics.dropped('internal-error')).toBe(0);
  });

  it('sends retained messages after the SUBACK, with the retain flag', async () => {
    local('state/a', 'A', 1, true);
    local('state/b', 'B', 1, true);
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    await c.subscribe('state/+', 1);
    await until(() => c.publishes.length === 2, 'retained messages');
    expect(c.publishes.every((p) => p.retain)).toBe(true);
    expect(c.publishes.map((p) => p.payload.toString()).sort()).toEqual(['A', 'B']);
    const subackAt = c.arrivals.indexOf(MsgType.SUBACK);
    expect(c.arrivals.indexOf(MsgType.REGISTER)).toBeGreaterThan(subackAt);
    expect(c.arrivals.indexOf(MsgType.PUBLISH)).toBeGreaterThan(subackAt);
  });

  it('answers a DUP SUBSCRIBE again without sending the retained messages twice', async () => {
    local('state/r', 'R', 1, true);
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    const first = await c.subscribe('state/r', 1);
    await until(() => c.publishes.length === 1, 'the retained message');
    c.send({ type: MsgType.SUBSCRIBE, dup: true, qos: 1, msgId: 900, topicIdType: 0, topicName: 'state/r', topicId: undefined });
    expect((await c.next(MsgType.SUBACK, 2000, (p) => p.msgId === 900)).topicId).toBe(first.topicId);
    await new Promise((r) => setTimeout(r, 100));
    expect(c.publishes).toHaveLength(1);
  });

  it('grants the requested QoS and delivers at the lower of publish and subscription QoS', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    expect((await c.subscribe('q/x', 2)).qos).toBe(2);
    local('q/x', 'a', 1);
    local('q/x', 'b', 2);
    await until(() => c.publishes.length === 2, 'two publishes');
    expect(c.publishes.map((p) => p.qos)).toEqual([1, 2]);
  });

  it('rejects a SUBSCRIBE to an unknown predefined id with 0x02 and an invalid filter with 0x02', async () => {
    const c = await h.client();
    await c.connect('s1');
    expect((await c.subscribe({ predefined: 99 })).returnCode).toBe(ReturnCode.INVALID_TOPIC_ID);
    expect((await c.subscribe('a/#/b')).returnCode).toBe(ReturnCode.INVALID_TOPIC_ID);
  });

  it('refuses a malformed shared subscription ($share/g) with 0x02, as the broker refuses it to MQTT clients, instead of acknowledging a subscription it never makes', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    for (const filter of ['$share/g', '$share//x']) {
      expect((await c.subscribe(filter)).returnCode).toBe(ReturnCode.INVALID_TOPIC_ID);
    }
    expect(h.gw.metrics.dropped('internal-error')).toBe(0);
    // A well-formed one is taken; its messages come on their own topics, registered first.
    const ack = await c.subscribe('$share/g/sh/t', 1);
    expect(ack).toMatchObject({ returnCode: 0, topicId: 0 });
    local('sh/t', 'one', 1);
    const p = await c.next(MsgType.PUBLISH);
    expect(c.topicIds.get(p.topicId)).toBe('sh/t');
    expect(h.gw.metrics.dropped('internal-error')).toBe(0);
  });

  it('stops delivering after UNSUBSCRIBE and always answers UNSUBACK', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    await c.subscribe('u/1', 0);
    c.send({ type: MsgType.UNSUBSCRIBE, msgId: 77, topicIdType: 0, topicName: 'u/1', topicId: undefined });
    expect((await c.next(MsgType.UNSUBACK)).msgId).toBe(77);
    c.send({ type: MsgType.UNSUBSCRIBE, msgId: 78, topicIdType: 0, topicName: 'never/subscribed', topicId: undefined });
    expect((await c.next(MsgType.UNSUBACK)).msgId).toBe(78);
    local('u/1', 'x');
    expect(await c.none(MsgType.PUBLISH, 150)).toBe(true);
  });
});

describe('MQTT-SN topic table bounds', () => {
  it('answers REGISTER beyond max_topics_per_client with 0x01 congestion and never ids 0x0000/0xFFFF', async () => {
    const c = await h.client();
    await c.connect('s1');
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await c.register(`t/${i}`));
    expect(acks.map((a) => a.returnCode)).toEqual([0, 0, 0, ReturnCode.CONGESTION, ReturnCode.CONGESTION]);
    expect(acks.slice(0, 3).every((a) => a.topicId !== 0 && a.topicId !== 0xffff)).toBe(true);
    // A name already registered still gets its id.
    expect((await c.register('t/1')).topicId).toBe(acks[1]!.topicId);
    // The gateway keeps working for this client.
    c.publish(acks[0]!.topicId, 'ok', { qos: 1 });
    expect((await c.next(MsgType.PUBACK)).returnCode).toBe(0);
  });

  it('survives 60 REGISTERs of distinct topics (the 51st is where others crashed)', async () => {
    const g = await startSnGateway('max_topics_per_client: 256');
    try {
      const c = await g.client();
      await c.connect('many');
      for (let i = 0; i < 60; i++) expect((await c.register(`m/${i}`)).returnCode).toBe(0);
    } finally {
      await g.close();
    }
  });

  it('answers SUBSCRIBE beyond max_topics_per_client subscriptions with 0x01 congestion', async () => {
    const c = await h.client();
    await c.connect('s1');
    const codes = [];
    for (const f of ['a/#', 'b/#', 'c/#', 'd/#']) codes.push((await c.subscribe(f, 0)).returnCode);
    expect(codes).toEqual([0, 0, 0, ReturnCode.CONGESTION]);
    expect((await c.subscribe('a/#', 1)).returnCode).toBe(0); // replacing one is fine
  });

  it('drops a wildcard match it cannot register when the table is full, and counts it', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    for (let i = 0; i < 3; i++) await c.register(`full/${i}`);
    await c.subscribe('w/#', 0);
    local('w/new', 'x');
    await until(() => h.gw.metrics.dropped('topic-table-full') === 1, 'the drop');
    expect(c.publishes).toHaveLength(0);
  });
});

describe('MQTT-SN delivery of messages too large for a datagram', () => {
  it('drops a wildcard match whose topic name is too long to REGISTER, keeps the client and delivers the next message', async () => {
    const g = await startSnGateway('max_datagram_size: 128\nretry_interval: 50ms\nmax_retries: 1');
    try {
      const c = await g.client({ autoAck: true });
      await c.connect('longname');
      await c.subscribe('l/#', 1);
      void g.local(`l/${'x'.repeat(200)}`, 'unsendable', 1);
      void g.local('l/short', 'next', 1);
      await until(() => c.publishes.length === 1, 'the next message');
      expect(c.publishes[0]!.payload.toString()).toBe('next');
      expect(g.gw.metrics.dropped('too-large-out')).toBe(1);
      // Waiting for a REGACK to a REGISTER that was never sent would have ended in N_retry.
      await new Promise((r) => setTimeout(r, 200));
      expect(g.gw.session('longname')?.state).toBe('active');
    } finally {
      await g.close();
    }
  });
});

describe('MQTT-SN delivery under loss', () => {
  it('retransmits REGISTER and PUBLISH (with DUP) until acknowledged', async () => {
    const g = await startSnGateway('retry_interval: 50ms\nmax_retries: 5');
    try {
      const c = await g.client({ autoAck: true });
      await c.connect('lossy');
      await c.subscribe('l/#', 1);
      const drops = new Map<number, number>();
      c.dropIncoming = (p) => {
        const n = drops.get(p.type) ?? 0;
        drops.set(p.type, n + 1);
        return (p.type === MsgType.REGISTER || p.type === MsgType.PUBLISH) && n < 1;
      };
      g.broker.publish({ topic: 'l/1', payload: Buffer.from('x'), qos: 1, retain: false, origin: { kind: 'system', id: 't' } });
      await until(() => c.publishes.length === 1, 'the publish after retransmissions');
      expect(c.publishes[0]!.dup).toBe(true);
      expect(g.gw.metrics.retransmissions).toBeGreaterThanOrEqual(2);
    } finally {
      await g.close();
    }
  });

  it('registers again and resends when the client answers PUBACK "invalid topic id"', async () => {
    const c = await h.client();
    await c.connect('s1');
    const ack = await c.subscribe('re/g', 1);
    local('re/g', 'x', 1);
    const p1 = await c.next(MsgType.PUBLISH);
    expect(p1.topicId).toBe(ack.topicId);
    c.send({ type: MsgType.PUBACK, topicId: p1.topicId, msgId: p1.msgId, returnCode: ReturnCode.INVALID_TOPIC_ID });
    const reg = await c.next(MsgType.REGISTER);
    expect(reg.topicName).toBe('re/g');
    c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    const p2 = await c.next(MsgType.PUBLISH);
    expect(p2.topicId).toBe(reg.topicId);
    expect(p2.payload.toString()).toBe('x');
  });

  it('completes QoS 2 towards the client with PUBREC, PUBREL, PUBCOMP', async () => {
    const c = await h.client();
    await c.connect('s1');
    await c.subscribe('two', 2);
    local('two', 'x', 2);
    const p = await c.next(MsgType.PUBLISH);
    expect(p.qos).toBe(2);
    c.send({ type: MsgType.PUBREC, msgId: p.msgId });
    expect((await c.next(MsgType.PUBREL)).msgId).toBe(p.msgId);
    c.send({ type: MsgType.PUBCOMP, msgId: p.msgId });
    local('two', 'y', 2);
    expect((await c.next(MsgType.PUBLISH)).payload.toString()).toBe('y');
  });
});
