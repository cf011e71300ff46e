/**
 * Overlapping subscriptions of one sensor (`site/#` and `site/+/temp`): each message reaches
 * it once, at the highest QoS of the subscriptions that match, as for an MQTT 5 session
 * [MQTT-3.3.4-2]. Real UDP datagrams to a running gateway.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { accessControl } from '../helpers/auth-harness.js';
import { silentLog } from '../helpers/broker-harness.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('MQTT-SN overlapping subscriptions', () => {
  it('delivers a message matching two of a sensor\'s filters once, at the higher QoS of the two', async () => {
    h = await startSnGateway();
    const c = await h.client({ autoAck: true });
    expect(await c.connect('overlap-1')).toBe(0);
    expect((await c.subscribe('site/#', 0)).returnCode).toBe(0);
    expect((await c.subscribe('site/+/temp', 1)).returnCode).toBe(0);
    await h.local('site/a/temp', '21.5', 1);
    await h.local('site/a/hum', '40', 1);
    // The second message (matching only site/#, at QoS 0) marks the end of the first one's deliveries.
    await until(() => c.publishes.some((p) => p.payload.toString() === '40'), 'the site/a/hum message');
    await new Promise((r) => setTimeout(r, 200));
    const temps = c.publishes.filter((p) => p.payload.toString() === '21.5');
    expect(temps).toHaveLength(1);
    expect(temps[0]!.qos).toBe(1);
    expect(c.publishes.find((p) => p.payload.toString() === '40')!.qos).toBe(0);
    // One REGISTER per topic, not one per matching filter.
    expect(c.arrivals.filter((t) => t === MsgType.REGISTER)).toHaveLength(2);
  });

  it('keeps delivering on the remaining filter after the sensor unsubscribes from the other', async () => {
    h = await startSnGateway();
    const c = await h.client({ autoAck: true });
    expect(await c.connect('overlap-2')).toBe(0);
    await c.subscribe('site/#', 0);
    await c.subscribe('site/+/temp', 1);
    const msgId = c.nextMsgId();
    c.send({ type: MsgType.UNSUBSCRIBE, msgId, topicIdType: 0, topicName: 'site/+/temp', topicId: undefined });
    await c.next(MsgType.UNSUBACK);
    await h.local('site/b/temp', '19', 1);
    await until(() => c.publishes.length === 1, 'the site/b/temp message');
    await new Promise((r) => setTimeout(r, 150));
    expect(c.publishes).toHaveLength(1);
    expect(c.publishes[0]!.qos).toBe(0);
  });

  it('checks the ACL once per message when a partly granted filter overlaps a granted one', async () => {
    const acl = ['mqttsn acl-1', 'read site/a/#', 'read site/b/temp'].join('\n');
    const broker = new Broker({}, { log: silentLog, access: await accessControl({ acl }) });
    h = await startSnGateway('', { broker });
    const c = await h.client({ autoAck: true });
    expect(await c.connect('acl-1')).toBe(0);
    expect((await c.subscribe('site/#', 0)).returnCode).toBe(0); // granted in part
    expect((await c.subscribe('site/b/temp', 1)).returnCode).toBe(0); // granted in full
    await h.local('site/c/x', 'hidden', 1);
    await h.local('site/b/temp', 'both', 1);
    await h.local('site/a/x', 'last', 1);
    await until(() => c.publishes.some((p) => p.payload.toString() === 'last'), 'the site/a/x message');
    await new Promise((r) => setTimeout(r, 150));
    expect(c.publishes.map((p) => [p.payload.toString(), p.qos])).toEqual([['both', 1], ['last', 0]]);
    expect(h.gw.metrics.dropped('not-authorized')).toBe(1);
  });
});
