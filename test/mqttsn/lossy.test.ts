/**
 * A sensor on a bad radio link: the test client loses and duplicates datagrams at random
 * (seeded) in both directions and retransmits as §6.13 asks a client to; the gateway must
 * still deliver QoS 2 exactly once and QoS 1 at least once, in both directions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';
import type { SnTestClient } from '../helpers/mqttsn-client.js';

let h: SnHarness;
beforeEach(async () => {
  h = await startSnGateway('retry_interval: 40ms\nmax_retries: 50');
});
afterEach(async () => h.close());

/** Retransmits `send` every 30 ms until `answer` arrives (the client side of §6.13). */
async function exchange<T>(c: SnTestClient, send: () => void, answer: () => Promise<T>): Promise<T> {
  const t = setInterval(send, 30);
  send();
  try {
    return await answer();
  } finally {
    clearInterval(t);
  }
}

async function connectLossy(c: SnTestClient, id: string): Promise<void> {
  await exchange(c, () => c.send({ type: MsgType.CONNECT, will: false, cleanSession: true, protocolId: 1, duration: 60, clientId: id }), () => c.next(MsgType.CONNACK, 5000));
}

describe('MQTT-SN over a lossy, duplicating link', () => {
  it('delivers 40 QoS 2 publishes from the sensor exactly once', async () => {
    const seen = h.watch('lossy/#');
    const c = await h.client({ lossIn: 0.2, lossOut: 0.2, dupOut: 0.2, seed: 7 });
    await connectLossy(c, 'lossy-2');
    const msgId = c.nextMsgId();
    const reg = await exchange(c, () => c.send({ type: MsgType.REGISTER, topicId: 0, msgId, topicName: 'lossy/q2' }), () => c.next(MsgType.REGACK, 5000, (p) => p.msgId === msgId));
    for (let i = 0; i < 40; i++) {
      const id = c.nextMsgId();
      let first = true;
      await exchange(c, () => {
        c.publish(reg.topicId, `m${i}`, { qos: 2, msgId: id, dup: !first });
        first = false;
      }, () => c.next(MsgType.PUBREC, 5000, (p) => p.msgId === id));
      await exchange(c, () => c.send({ type: MsgType.PUBREL, msgId: id }), () => c.next(MsgType.PUBCOMP, 5000, (p) => p.msgId === id));
    }
    expect(seen.map((m) => m.payload.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
  }, 30_000);

  it('delivers 40 QoS 1 publishes from the sensor at least once and in order of first arrival', async () => {
    const seen = h.watch('lossy/#');
    const c = await h.client({ lossIn: 0.2, lossOut: 0.2, dupOut: 0.2, seed: 11 });
    await connectLossy(c, 'lossy-1');
    const msgId = c.nextMsgId();
    const reg = await exchange(c, () => c.send({ type: MsgType.REGISTER, topicId: 0, msgId, topicName: 'lossy/q1' }), () => c.next(MsgType.REGACK, 5000, (p) => p.msgId === msgId));
    for (let i = 0; i < 40; i++) {
      const id = c.nextMsgId();
      let first = true;
      await exchange(c, () => {
        c.publish(reg.topicId, `m${i}`, { qos: 1, msgId: id, dup: !first });
        first = false;
      }, () => c.next(MsgType.PUBACK, 5000, (p) => p.msgId === id));
    }
    const firsts = [...new Set(seen.map((m) => m.payload.toString()))];
    expect(firsts).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
  }, 30_000);

  it('delivers 30 QoS 1 messages to the sensor despite loss, retransmitting with DUP', async () => {
    const c = await h.client({ lossIn: 0.25, lossOut: 0.25, seed: 3, autoAck: true });
    await connectLossy(c, 'lossy-down');
    const sub = c.nextMsgId();
    await exchange(c, () => c.send({ type: MsgType.SUBSCRIBE, dup: false, qos: 1, msgId: sub, topicIdType: 0, topicName: 'down/#', topicId: undefined }), () => c.next(MsgType.SUBACK, 5000));
    for (let i = 0; i < 30; i++) h.broker.publish({ topic: `down/${i % 3}`, payload: Buffer.from(`d${i}`), qos: 1, retain: false, origin: { kind: 'system', id: 't' } });
    await until(() => new Set(c.publishes.map((p) => p.payload.toString())).size === 30, 'all 30 messages', 20_000);
    expect(h.gw.metrics.retransmissions).toBeGreaterThan(0);
    expect(c.publishes.some((p) => p.dup)).toBe(true);
  }, 30_000);
});
