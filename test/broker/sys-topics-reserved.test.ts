/**
 * `$SYS/...` is the gateway's own voice (bridge and serial device states, counters; retained):
 * clients may read it but not write it, so no local app can show a bridge or a device as
 * online when it is not. MQTT 5 §4.7.2: the server SHOULD prevent clients from using `$`
 * topics to exchange messages; mosquitto refuses client publishes to $SYS likewise.
 */
import type { Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import type { RawClient } from '../helpers/raw-client.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const STATE = '$SYS/outpost/bridge/cloud/state';

async function sysWatcher(harness: Harness): Promise<RawClient> {
  const w = harness.client(5);
  await w.connect({ clientId: 'dashboard' });
  w.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$SYS/#', qos: 1 }] } as Packet);
  await w.next('suback');
  return w;
}

describe('client publishes to $SYS topics', () => {
  it('are refused with 0x87 for an MQTT 5 client, neither delivered nor retained, while the gateway\'s own still are', async () => {
    h = startBroker();
    const w = await sysWatcher(h);
    const c = h.client(5);
    await c.connect({ clientId: 'app' });
    c.send({ cmd: 'publish', topic: STATE, payload: Buffer.from('online'), qos: 1, messageId: 7, retain: true, dup: false } as Packet);
    const ack = await c.next('puback');
    expect([ack.messageId, ack.reasonCode]).toEqual([7, 0x87]);
    c.send({ cmd: 'publish', topic: '$SYS', payload: Buffer.from('x'), qos: 0, retain: false, dup: false } as Packet);
    // Other $ topics are not the gateway's: they pass.
    c.send({ cmd: 'publish', topic: '$app/x', payload: Buffer.from('mine'), qos: 0, retain: false, dup: false } as Packet);
    h.broker.publish({ topic: STATE, payload: Buffer.from('offline'), qos: 1, retain: true, origin: { kind: 'system', id: 'bridge' } });

    const got = await w.next('publish');
    expect([got.topic, got.payload.toString()]).toEqual([STATE, 'offline']);
    expect(await w.settle(50)).toEqual([]);
    const late = h.client(5);
    await late.connect({ clientId: 'late' });
    late.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$SYS/#', qos: 1 }, { topic: '$app/#', qos: 0 }] } as Packet);
    await late.next('suback');
    const retained = await late.next('publish');
    expect([retained.topic, retained.payload.toString(), retained.retain]).toEqual([STATE, 'offline', true]);
    expect(await late.settle(50)).toEqual([]);
    expect(c.closed).toBe(false);
  });

  it('are acknowledged and dropped for a 3.1.1 client, which has no negative acknowledgement, QoS 2 flow completed', async () => {
    h = startBroker();
    const w = await sysWatcher(h);
    const c = h.client(4);
    await c.connect({ clientId: 'app311' });
    c.send({ cmd: 'publish', topic: STATE, payload: Buffer.from('online'), qos: 2, messageId: 3, retain: true, dup: false } as Packet);
    expect((await c.next('pubrec')).messageId).toBe(3);
    c.send({ cmd: 'pubrel', messageId: 3 } as Packet);
    expect((await c.next('pubcomp')).messageId).toBe(3);
    c.send({ cmd: 'publish', topic: '$SYS/outpost/serial/boiler/state', payload: Buffer.from('online'), qos: 1, messageId: 4, retain: false, dup: false } as Packet);
    expect((await c.next('puback')).messageId).toBe(4);
    expect(await w.settle(50)).toEqual([]);
    expect(c.closed).toBe(false);
  });

  it('refuses a Will on a $SYS topic at CONNECT (0x87, 3.1.1 return code 5) instead of publishing it at the client\'s death', async () => {
    h = startBroker();
    const will = { topic: STATE, payload: Buffer.from('online'), qos: 1, retain: true };
    const v5 = h.client(5);
    expect((await v5.connect({ clientId: 'w5', will } as never)).reasonCode).toBe(0x87);
    const v4 = h.client(4);
    expect((await v4.connect({ clientId: 'w4', will } as never)).returnCode).toBe(5);
    await v4.waitClosed();
  });
});
