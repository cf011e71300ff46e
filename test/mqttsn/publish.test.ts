import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness;
beforeEach(async () => {
  h = await startSnGateway('predefined_topics: { 7: sensors/door }\nclients: { special: { predefined_topics: { 7: special/door } } }');
});
afterEach(async () => h.close());

describe('MQTT-SN PUBLISH from a sensor', () => {
  it('publishes QoS 0 on a registered topic id to the bus', async () => {
    const seen = h.watch('sensors/#');
    const c = await h.client();
    expect(await c.connect('s1')).toBe(ReturnCode.ACCEPTED);
    const reg = await c.register('sensors/temp');
    expect(reg.returnCode).toBe(0);
    expect(reg.topicId).not.toBe(0);
    c.publish(reg.topicId, '21.5');
    await until(() => seen.length === 1, 'the bus message');
    expect(seen[0]).toMatchObject({ topic: 'sensors/temp', qos: 0, retain: false, origin: { kind: 'mqttsn', id: 's1' } });
    expect(seen[0]!.payload.toString()).toBe('21.5');
  });

  it('acknowledges QoS 1 with a PUBACK that echoes TopicId and MsgId', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    const { topicId } = await c.register('a/b');
    const msgId = c.publish(topicId, 'x', { qos: 1 });
    const ack = await c.next(MsgType.PUBACK);
    expect(ack).toEqual({ type: MsgType.PUBACK, topicId, msgId, returnCode: 0 });
    expect(seen).toHaveLength(1);
  });

  it('echoes a short topic name in PUBACK octet for octet (not byte-swapped)', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    const ab = Buffer.from('ab').readUInt16BE(0);
    c.publish(ab, 'v', { qos: 1, topicIdType: 2 });
    const ack = await c.next(MsgType.PUBACK);
    expect(ack.topicId).toBe(0x6162);
    expect(seen[0]!.topic).toBe('ab');
  });

  it('refuses a short topic name that is not a valid MQTT topic name with PUBACK 0x02 and publishes nothing', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    // A wildcard, a NUL, octets that are not UTF-8: none may reach an MQTT subscriber.
    for (const octets of [[0x61, 0x23], [0x78, 0x2b], [0x00, 0x00], [0x00, 0x61], [0xff, 0xfe], [0xc0, 0x80]]) {
      const topicId = Buffer.from(octets).readUInt16BE(0);
      const msgId = c.publish(topicId, 'v', { qos: 1, topicIdType: 2 });
      expect(await c.next(MsgType.PUBACK, 2000, (a) => a.msgId === msgId)).toMatchObject({ topicId, returnCode: ReturnCode.INVALID_TOPIC_ID });
    }
    c.publish(Buffer.from('ok').readUInt16BE(0), 'v', { qos: 1, topicIdType: 2 });
    await c.next(MsgType.PUBACK, 2000, (a) => a.returnCode === 0);
    expect(seen.map((m) => m.topic)).toEqual(['ok']);
    expect(h.gw.metrics.dropped('invalid-topic')).toBe(6);
  });

  it('reads a short topic name as UTF-8: two octets of one character publish that character', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    c.publish(Buffer.from('é').readUInt16BE(0), 'v', { qos: 1, topicIdType: 2 });
    expect((await c.next(MsgType.PUBACK)).returnCode).toBe(0);
    expect(seen.map((m) => m.topic)).toEqual(['é']);
  });

  it('resolves predefined ids, a client table overriding the global one', async () => {
    const seen = h.watch('#');
    const a = await h.client();
    const b = await h.client();
    await a.connect('plain');
    await b.connect('special');
    a.publish(7, '1', { qos: 1, topicIdType: 1 });
    b.publish(7, '2', { qos: 1, topicIdType: 1 });
    expect((await a.next(MsgType.PUBACK)).topicId).toBe(7);
    expect((await b.next(MsgType.PUBACK)).topicId).toBe(7);
    expect(seen.map((m) => m.topic).sort()).toEqual(['sensors/door', 'special/door']);
  });

  it('answers an unknown topic id with PUBACK "rejected: invalid topic ID" and publishes nothing', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    c.publish(0x4242, 'x', { qos: 0 });
    const ack = await c.next(MsgType.PUBACK);
    expect(ack).toMatchObject({ topicId: 0x4242, returnCode: ReturnCode.INVALID_TOPIC_ID });
    expect(seen).toHaveLength(0);
    expect(h.gw.metrics.dropped('invalid-topic')).toBe(1);
  });

  it('publishes a QoS 1 retransmission with DUP and the same MsgId once, acknowledging both', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    const { topicId } = await c.register('t');
    const msgId = c.publish(topicId, 'once', { qos: 1 });
    await c.next(MsgType.PUBACK);
    c.publish(topicId, 'once', { qos: 1, msgId, dup: true });
    await c.next(MsgType.PUBACK);
    expect(seen).toHaveLength(1);
  });

  it('delivers QoS 2 exactly once even when PUBLISH and PUBREL are repeated', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    const { topicId } = await c.register('q2');
    const msgId = c.publish(topicId, 'exactly', { qos: 2 });
    expect((await c.next(MsgType.PUBREC)).msgId).toBe(msgId);
    c.publish(topicId, 'exactly', { qos: 2, msgId, dup: true });
    expect((await c.next(MsgType.PUBREC)).msgId).toBe(msgId);
    c.send({ type: MsgType.PUBREL, msgId });
    expect((await c.next(MsgType.PUBCOMP)).msgId).toBe(msgId);
    c.send({ type: MsgType.PUBREL, msgId });
    expect((await c.next(MsgType.PUBCOMP)).msgId).toBe(msgId);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.qos).toBe(2);
  });

  it('keeps at most 16 QoS 2 MsgIds awaiting PUBREL per client, the oldest forgotten first', async () => {
    const c = await h.client();
    await c.connect('s1');
    const { topicId } = await c.register('q2/many');
    for (let i = 1; i <= 40; i++) {
      c.publish(topicId, 'x', { qos: 2, msgId: i });
      await c.next(MsgType.PUBREC);
    }
    const q2 = h.gw.session('s1')!.qos2In!;
    expect(q2.size).toBe(16);
    expect([...q2.keys()][0]).toBe(25);
  });

  it('carries the retain flag into the broker, which keeps the message', async () => {
    const c = await h.client();
    await c.connect('s1');
    const { topicId } = await c.register('state/x');
    c.publish(topicId, 'on', { qos: 1, retain: true });
    await c.next(MsgType.PUBACK);
    expect(h.broker.retainedFor('state/#').map((m) => m.payload.toString())).toEqual(['on']);
  });
});

describe('MQTT-SN PUBLISH QoS -1 (§6.8)', () => {
  it('is accepted without a connection on predefined ids and short names from allowed networks', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    c.publish(7, 'p', { qos: -1, topicIdType: 1 });
    c.publish(Buffer.from('zz').readUInt16BE(0), 's', { qos: -1, topicIdType: 2 });
    await until(() => seen.length === 2, 'two QoS -1 publishes');
    expect(seen.map((m) => [m.topic, m.qos])).toEqual([['sensors/door', 0], ['zz', 0]]);
  });

  it('is dropped and counted on a short name that is not a valid topic name, and nothing is published', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    c.publish(Buffer.from('#a').readUInt16BE(0), 'p', { qos: -1, topicIdType: 2 });
    c.publish(Buffer.from([0x00, 0x61]).readUInt16BE(0), 'p', { qos: -1, topicIdType: 2 });
    c.publish(Buffer.from('zz').readUInt16BE(0), 's', { qos: -1, topicIdType: 2 });
    await until(() => seen.length === 1 && h.gw.metrics.dropped('qos-minus-one-topic') === 2, 'one publish and two drops');
    expect(seen[0]!.topic).toBe('zz');
  });

  it('is dropped and counted on a normal topic id, with no answer', async () => {
    const c = await h.client();
    c.publish(1, 'p', { qos: -1, topicIdType: 0 });
    await until(() => h.gw.metrics.dropped('qos-minus-one-topic') === 1, 'the drop');
    expect(await c.none(MsgType.PUBACK, 100)).toBe(true);
  });
});

describe('MQTT-SN QoS -1 sources', () => {
  it('refuses QoS -1 from networks outside mqttsn.qos_minus_one_sources', async () => {
    const g = await startSnGateway('qos_minus_one_sources: [10.0.0.0/8]\npredefined_topics: { 1: a }');
    try {
      const seen = g.watch('#');
      const c = await g.client();
      c.publish(1, 'p', { qos: -1, topicIdType: 1 });
      await until(() => g.gw.metrics.dropped('qos-minus-one-source') === 1, 'the drop');
      expect(seen).toHaveLength(0);
    } finally {
      await g.close();
    }
  });
});
