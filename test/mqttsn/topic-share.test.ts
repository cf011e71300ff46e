/**
 * The topic-id table of a sensor is shared between its own REGISTERs and the gateway's
 * (wildcard matches): the gateway's ids hold at most half and give way, least recently used
 * first, before a sensor's REGISTER is refused; never an id in an exchange, and a given-up
 * id's number does not come back meaning another topic. Real UDP datagrams.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('MQTT-SN topic ids shared by the sensor and the gateway', () => {
  it('accepts a sensor\'s REGISTERs after a busy wildcard subscription, the gateway\'s ids giving way least recently used first', async () => {
    h = await startSnGateway('max_topics_per_client: 4');
    const c = await h.client({ autoAck: true });
    expect(await c.connect('share-1')).toBe(0);
    await c.subscribe('busy/#', 0);
    for (let i = 1; i <= 6; i++) {
      await h.local(`busy/${i}`, `m${i}`);
      await until(() => c.publishes.length === i, `message ${i}`);
    }
    // busy/5 is used again: busy/6 is now the gateway id least recently used.
    await h.local('busy/5', 'again');
    await until(() => c.publishes.length === 7, 'the message on busy/5');
    expect(c.arrivals.filter((t) => t === MsgType.REGISTER)).toHaveLength(6);
    expect(h.gw.session('share-1')!.topics.gatewaySize).toBe(2);
    const gatewayIds = new Set(c.topicIds.keys());
    const acks = [];
    for (const n of ['own/a', 'own/b', 'own/c']) acks.push(await c.register(n));
    expect(acks.map((a) => a.returnCode)).toEqual([0, 0, 0]);
    // Given-up numbers are not handed out again for other topics.
    for (const a of acks) expect(gatewayIds.has(a.topicId)).toBe(false);
    // busy/6 gave way first; busy/5 is still known and used without a REGISTER.
    const t = h.gw.session('share-1')!.topics;
    expect(t.idOf('busy/6')).toBeUndefined();
    expect(t.idOf('busy/5')).toBeDefined();
    await h.local('busy/5', 'still');
    await until(() => c.publishes.length === 8, 'the message on busy/5');
    expect(c.arrivals.filter((t) => t === MsgType.REGISTER)).toHaveLength(6);
    // The fourth own topic fills the table: the last gateway id gives way too.
    expect((await c.register('own/d')).returnCode).toBe(0);
    expect((await c.register('own/e')).returnCode).toBe(ReturnCode.CONGESTION);
    expect(h.gw.metrics.totalDrops).toBe(1 /* own/e: the table is full of the sensor's own ids */);
  });

  it('never gives up a gateway id whose REGISTER awaits its REGACK, and answers a PUBLISH with a given-up id "invalid topic ID"', async () => {
    h = await startSnGateway('max_topics_per_client: 2');
    const c = await h.client();
    expect(await c.connect('share-2')).toBe(0);
    await c.subscribe('w/#', 0);
    const seen = h.watch('w/#');
    void h.local('w/a', 'x');
    const reg = await c.next(MsgType.REGISTER);
    expect((await c.register('own/1')).returnCode).toBe(0);
    // The table is full and the gateway's only id is mid-exchange: refused, not taken.
    expect((await c.register('own/2')).returnCode).toBe(ReturnCode.CONGESTION);
    c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    const p = await c.next(MsgType.PUBLISH);
    expect([p.topicId, p.payload.toString()]).toEqual([reg.topicId, 'x']);
    // Now it may give way.
    const own2 = await c.register('own/2');
    expect(own2.returnCode).toBe(0);
    expect(own2.topicId).not.toBe(reg.topicId);
    const msgId = c.publish(reg.topicId, 'stale', { qos: 1 });
    expect((await c.next(MsgType.PUBACK, 2000, (a) => a.msgId === msgId)).returnCode).toBe(ReturnCode.INVALID_TOPIC_ID);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((m) => m.payload.toString())).toEqual(['x']);
  });
});
