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
