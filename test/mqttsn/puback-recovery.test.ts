/**
 * A sensor's PUBACK rejections of what the gateway sends it (§5.4.13, §6.10): "rejected:
 * invalid topic ID" makes the gateway REGISTER the topic and resend; "rejected: congestion"
 * makes it wait and resend. Both bounded, the final drops counted. Real UDP datagrams.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import type { SnTestClient } from '../helpers/mqttsn-client.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

type Pub = Awaited<ReturnType<SnTestClient['next']>> & { type: 0x0c };

async function publishOf(c: SnTestClient, payload: string, ms = 2000): Promise<Pub> {
  return (await c.next(MsgType.PUBLISH, ms, (p) => p.payload.toString() === payload)) as Pub;
}

const puback = (c: SnTestClient, p: Pub, returnCode: number) => c.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode });

async function regack(c: SnTestClient, topicName: string): Promise<number> {
  const reg = await c.next(MsgType.REGISTER, 2000, (r) => r.topicName === topicName);
  c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
  return reg.topicId;
}

describe('MQTT-SN PUBACK "rejected: invalid topic ID" from a sensor', () => {
  it('registers a forgotten normal topic id again under the same number and resends the message', async () => {
    h = await startSnGateway();
    const c = await h.client();
    expect(await c.connect('reboot-1')).toBe(0);
    expect((await c.subscribe('site/#', 1)).returnCode).toBe(0);
    void h.local('site/valve', 'open', 1);
    const id = await regack(c, 'site/valve');
    const first = await publishOf(c, 'open');
    expect([first.topicIdType, first.topicId]).toEqual([0, id]);
    // The sensor rebooted and lost its topic table.
    puback(c, first, ReturnCode.INVALID_TOPIC_ID);
    expect(await regack(c, 'site/valve')).toBe(id);
    const again = await publishOf(c, 'open');
    expect([again.topicIdType, again.topicId, again.qos]).toEqual([0, id, 1]);
    puback(c, again, 0);
    void h.local('site/valve', 'close', 1);
    const next = await publishOf(c, 'close');
    expect(next.topicId).toBe(id);
    expect(h.gw.metrics.totalDrops).toBe(0);
  });

  it('falls back to registering a normal topic id when the sensor does not know the predefined id, and keeps using it', async () => {
    h = await startSnGateway('predefined_topics: { 7: site/door }');
    const c = await h.client();
    expect(await c.connect('no-predef')).toBe(0);
    expect((await c.subscribe('site/#', 1)).returnCode).toBe(0);
    void h.local('site/door', 'ajar', 1);
    const first = await publishOf(c, 'ajar');
    expect([first.topicIdType, first.topicId]).toEqual([1, 7]);
    puback(c, first, ReturnCode.INVALID_TOPIC_ID);
    const id = await regack(c, 'site/door');
    const again = await publishOf(c, 'ajar');
    expect([again.topicIdType, again.topicId]).toEqual([0, id]);
    puback(c, again, 0);
    void h.local('site/door', 'shut', 1);
    const next = await publishOf(c, 'shut');
    expect([next.topicIdType, next.topicId]).toEqual([0, id]);
    puback(c, next, 0);
    expect(h.gw.metrics.totalDrops).toBe(0);
  });

  it('drops and counts a message whose topic id the sensor keeps rejecting, then delivers the next one', async () => {
    h = await startSnGateway('predefined_topics: { 7: site/door }');
    const c = await h.client();
    expect(await c.connect('stubborn')).toBe(0);
    expect((await c.subscribe('site/#', 1)).returnCode).toBe(0);
    void h.local('site/door', 'x', 1);
    puback(c, await publishOf(c, 'x'), ReturnCode.INVALID_TOPIC_ID);
    await regack(c, 'site/door');
    puback(c, await publishOf(c, 'x'), ReturnCode.INVALID_TOPIC_ID);
    await regack(c, 'site/door');
    puback(c, await publishOf(c, 'x'), ReturnCode.INVALID_TOPIC_ID);
    await until(() => h!.gw.metrics.dropped('topic-id-rejected') === 1, 'the message dropped as topic-id-rejected');
    expect(await c.none(MsgType.REGISTER, 200)).toBe(true);
    void h.local('site/other', 'y', 1);
    await regack(c, 'site/other');
    expect((await publishOf(c, 'y')).topicIdType).toBe(0);
  });
});

describe('MQTT-SN PUBACK "rejected: congestion" from a sensor', () => {
  it('resends the message after a wait, in order, while the sensor\'s own traffic is answered', async () => {
    h = await startSnGateway('retry_interval: 300ms\nmax_retries: 2');
    const c = await h.client();
    expect(await c.connect('busy-1')).toBe(0);
    const { topicId } = await c.subscribe('cmd/busy-1', 1);
    const own = await c.register('data/busy-1');
    void h.local('cmd/busy-1', 'a', 1);
    void h.local('cmd/busy-1', 'b', 1);
    const a = await publishOf(c, 'a');
    expect(a.topicId).toBe(topicId);
    const rejectedAt = Date.now();
    puback(c, a, ReturnCode.CONGESTION);
    // Meanwhile the sensor publishes and pings: answered at once.
    const msgId = c.publish(own.topicId, '17', { qos: 1 });
    expect((await c.next(MsgType.PUBACK, 1000, (p) => p.msgId === msgId)).returnCode).toBe(0);
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    await c.next(MsgType.PINGRESP, 1000);
    const again = await publishOf(c, 'a');
    expect(Date.now() - rejectedAt).toBeGreaterThanOrEqual(250);
    expect([again.dup, again.qos, again.topicId]).toEqual([false, 1, topicId]);
    expect(c.publishes.map((p) => p.payload.toString())).toEqual(['a', 'a']);
    puback(c, again, 0);
    puback(c, await publishOf(c, 'b'), 0);
    expect(h.gw.metrics.totalDrops).toBe(0);
    expect(h.gw.session('busy-1')!.state).toBe('active');
  });

  it('drops and counts a message after N_retry congestion answers, and goes on with the next one', async () => {
    h = await startSnGateway('retry_interval: 50ms\nmax_retries: 2');
    const c = await h.client();
    expect(await c.connect('busy-2')).toBe(0);
    await c.subscribe('cmd/busy-2', 1);
    void h.local('cmd/busy-2', 'a', 1);
    void h.local('cmd/busy-2', 'b', 1);
    for (let i = 0; i < 3; i++) puback(c, await publishOf(c, 'a'), ReturnCode.CONGESTION);
    await until(() => h!.gw.metrics.dropped('sensor-congested') === 1, 'the message dropped as sensor-congested');
    puback(c, await publishOf(c, 'b'), 0);
    expect(c.publishes.filter((p) => p.payload.toString() === 'a')).toHaveLength(3);
    expect(h.gw.session('busy-2')!.state).toBe('active');
  });

  it('gives a congested sleeper its PINGRESP at once and the message again at its next wake-up', async () => {
    h = await startSnGateway('retry_interval: 100ms\nmax_retries: 2');
    const c = await h.client();
    expect(await c.connect('sleepy', { clean: false, duration: 30 })).toBe(0);
    await c.subscribe('to/sleepy', 1);
    c.send({ type: MsgType.DISCONNECT, duration: 60 });
    await c.next(MsgType.DISCONNECT);
    await h.local('to/sleepy', 'wake', 1);
    c.send({ type: MsgType.PINGREQ, clientId: 'sleepy' });
    puback(c, await publishOf(c, 'wake'), ReturnCode.CONGESTION);
    await c.next(MsgType.PINGRESP, 1000);
    await until(() => h!.gw.session('sleepy')!.state === 'asleep', 'the sensor asleep again');
    expect(await c.none(MsgType.PUBLISH, 250)).toBe(true);
    c.send({ type: MsgType.PINGREQ, clientId: 'sleepy' });
    puback(c, await publishOf(c, 'wake'), 0);
    await c.next(MsgType.PINGRESP, 1000);
    expect(h.gw.metrics.totalDrops).toBe(0);
  });
});

describe('MQTT-SN PUBACK "rejected: invalid topic ID" for a QoS 0 message', () => {
  it('counts the QoS 0 message lost and sends the next one on its topic with a registered normal id', async () => {
    h = await startSnGateway('predefined_topics: { 7: site/door }');
    const c = await h.client();
    expect(await c.connect('qos0-predef')).toBe(0);
    expect((await c.subscribe('site/#', 0)).returnCode).toBe(0);
    void h.local('site/door', 'one');
    const first = await publishOf(c, 'one');
    expect([first.topicIdType, first.topicId, first.msgId]).toEqual([1, 7, 0]);
    puback(c, first, ReturnCode.INVALID_TOPIC_ID);
    await until(() => h!.gw.metrics.dropped('topic-id-rejected') === 1, 'the QoS 0 message counted');
    void h.local('site/door', 'two');
    const id = await regack(c, 'site/door');
    expect([(await publishOf(c, 'two')).topicIdType, id]).toEqual([0, id]);
    void h.local('site/door', 'three');
    const third = await publishOf(c, 'three');
    expect([third.topicIdType, third.topicId]).toEqual([0, id]);
    expect(c.arrivals.filter((t) => t === MsgType.REGISTER)).toHaveLength(1);
  });
});
