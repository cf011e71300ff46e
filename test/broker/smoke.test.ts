import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('broker over in-memory streams', () => {
  it('delivers a QoS 1 publish to a wildcard subscriber and acknowledges the publisher', async () => {
    h = startBroker();
    const sub = h.client();
    expect((await sub.connect({ clientId: 'sub' })).returnCode).toBe(0);
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/+', qos: 1 }] });
    expect((await sub.next('suback')).granted).toEqual([1]);
    const pub = h.client(5);
    expect((await pub.connect({ clientId: 'pub' })).reasonCode).toBe(0);
    pub.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, dup: false, retain: false, messageId: 7 });
    expect((await pub.next('puback')).messageId).toBe(7);
    const got = await sub.next('publish');
    expect(got.topic).toBe('a/b');
    expect(got.qos).toBe(1);
    expect(String(got.payload)).toBe('x');
  });
});

describe('a QoS 1 publish fanning out', () => {
  it('reaches each subscriber with its own packet id, also when they share one encoding', async () => {
    h = startBroker();
    const a = h.client();
    const b = h.client();
    expect((await a.connect({ clientId: 'a' })).returnCode).toBe(0);
    expect((await b.connect({ clientId: 'b' })).returnCode).toBe(0);
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'first', qos: 1 }, { topic: 'x/+', qos: 1 }] });
    expect((await a.next('suback')).granted).toEqual([1, 1]);
    b.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x/+', qos: 1 }] });
    expect((await b.next('suback')).granted).toEqual([1]);
    const pub = h.client();
    expect((await pub.connect({ clientId: 'pub' })).returnCode).toBe(0);
    // `a` alone gets one message first, so its next packet id differs from b's.
    pub.send({ cmd: 'publish', topic: 'first', payload: Buffer.from('1'), qos: 1, dup: false, retain: false, messageId: 1 });
    expect((await pub.next('puback')).messageId).toBe(1);
    const first = await a.next('publish');
    pub.send({ cmd: 'publish', topic: 'x/y', payload: Buffer.from('2'), qos: 1, dup: false, retain: false, messageId: 2 });
    expect((await pub.next('puback')).messageId).toBe(2);
    const toA = await a.next('publish');
    const toB = await b.next('publish');
    expect([toA.topic, String(toA.payload), toB.topic, String(toB.payload)]).toEqual(['x/y', '2', 'x/y', '2']);
    expect(toA.messageId).toBe(first.messageId! + 1);
    expect(toB.messageId).toBe(1);
  });
});
