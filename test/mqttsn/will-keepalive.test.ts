import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness;
let clock: FakeClock;
beforeEach(async () => {
  clock = new FakeClock();
  h = await startSnGateway('retry_interval: 1s\nmax_retries: 2', { clock });
});
afterEach(async () => h.close());

const state = (id: string) => h.gw.session(id)?.state;

describe('MQTT-SN CONNECT and the Will (§6.2-§6.4)', () => {
  it('prompts for the Will topic and message, then publishes the Will when the keepalive expires', async () => {
    const wills = h.watch('wills/#');
    const c = await h.client();
    const rc = await c.connect('w1', { duration: 10, will: { topic: 'wills/w1', payload: 'gone', qos: 1, retain: true } });
    expect(rc).toBe(ReturnCode.ACCEPTED);
    clock.advance(14_000);
    expect(wills).toHaveLength(0);
    clock.advance(1_001); // 1.5 × Keep Alive without a message
    expect(state('w1')).toBeUndefined(); // clean session: nothing kept
    expect(wills).toHaveLength(1);
    expect(wills[0]).toMatchObject({ topic: 'wills/w1', qos: 1, origin: { kind: 'mqttsn', id: 'w1' } });
    expect(wills[0]!.payload.toString()).toBe('gone');
    expect(h.broker.retainedFor('wills/w1')).toHaveLength(1);
  });

  it('keeps a client that pings within its keepalive', async () => {
    const c = await h.client();
    await c.connect('p1', { duration: 10 });
    for (let i = 0; i < 5; i++) {
      clock.advance(9_000);
      c.send({ type: MsgType.PINGREQ, clientId: undefined });
      await c.next(MsgType.PINGRESP);
    }
    expect(state('p1')).toBe('active');
  });

  it('does not publish the Will after DISCONNECT', async () => {
    const wills = h.watch('#');
    const c = await h.client();
    await c.connect('w2', { duration: 10, will: { topic: 'wills/w2', payload: 'x' } });
    c.send({ type: MsgType.DISCONNECT, duration: undefined });
    await c.next(MsgType.DISCONNECT);
    clock.advance(60_000);
    expect(wills).toHaveLength(0);
    expect(state('w2')).toBeUndefined();
  });

  it('accepts an empty WILLTOPIC as "no Will" and answers CONNACK without WILLMSGREQ', async () => {
    const wills = h.watch('#');
    const c = await h.client();
    expect(await c.connect('w3', { duration: 10, will: 'empty' })).toBe(0);
    expect(c.arrivals).not.toContain(MsgType.WILLMSGREQ);
    clock.advance(20_000);
    expect(wills).toHaveLength(0);
  });

  it('updates the Will topic and message with WILLTOPICUPD/WILLMSGUPD and their responses', async () => {
    const wills = h.watch('#');
    const c = await h.client();
    await c.connect('w4', { duration: 10, will: { topic: 'old', payload: 'old' } });
    c.send({ type: MsgType.WILLTOPICUPD, qos: 0, retain: false, topic: 'new/topic' });
    expect((await c.next(MsgType.WILLTOPICRESP)).returnCode).toBe(0);
    c.send({ type: MsgType.WILLMSGUPD, payload: Buffer.from('new msg') });
    expect((await c.next(MsgType.WILLMSGRESP)).returnCode).toBe(0);
    clock.advance(15_001);
    expect(wills.map((m) => [m.topic, m.payload.toString()])).toEqual([['new/topic', 'new msg']]);
  });

  it('deletes the Will on an empty WILLTOPICUPD', async () => {
    const wills = h.watch('#');
    const c = await h.client();
    await c.connect('w5', { duration: 10, will: { topic: 'x', payload: 'y' } });
    c.send({ type: MsgType.WILLTOPICUPD, qos: 0, retain: false, topic: undefined });
    expect((await c.next(MsgType.WILLTOPICRESP)).returnCode).toBe(0);
    clock.advance(15_001);
    expect(wills).toHaveLength(0);
  });

  it('answers a ProtocolId other than 0x01 with CONNACK 0x03 and keeps no session', async () => {
    const c = await h.client();
    expect(await c.connect('v2', { protocolId: 0x02 })).toBe(ReturnCode.NOT_SUPPORTED);
    expect(state('v2')).toBeUndefined();
  });

  it('abandons a CONNECT whose Will prompts go unanswered', async () => {
    const c = await h.client();
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 10, clientId: 'mute' });
    await c.next(MsgType.WILLTOPICREQ);
    expect(state('mute')).toBe('disconnected');
    clock.advance(3_001); // T_retry × (N_retry + 1)
    expect(state('mute')).toBeUndefined();
  });

  it('leaves a client whose Will topic is refused with CONNACK 0x03 unconnected: its next messages get DISCONNECT and nothing is published', async () => {
    const seen = h.watch('#');
    const c = await h.client();
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 10, clientId: 'bad-will' });
    await c.next(MsgType.WILLTOPICREQ);
    c.send({ type: MsgType.WILLTOPIC, qos: 0, retain: false, topic: 'wills/+' });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    expect(h.gw.metrics.dropped('invalid-topic')).toBe(1); // counted and logged, as before the refusal rework
    expect(state('bad-will')).toBeUndefined();
    const reg = c.nextMsgId();
    c.send({ type: MsgType.REGISTER, topicId: 0, msgId: reg, topicName: 'after/refusal' });
    await c.next(MsgType.DISCONNECT);
    c.publish(0x6162, 'x', { qos: 1, topicIdType: 2 });
    await c.next(MsgType.DISCONNECT);
    expect(seen).toHaveLength(0);

    // A connected client whose new CONNECT is refused in the same way is not connected either.
    expect(await c.connect('bad-will-2')).toBe(ReturnCode.ACCEPTED);
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 10, clientId: 'bad-will-2' });
    await c.next(MsgType.WILLTOPICREQ);
    c.send({ type: MsgType.WILLTOPIC, qos: 0, retain: false, topic: 'wills/#' });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    await c.next(MsgType.DISCONNECT);
    expect(await c.none(MsgType.PINGRESP)).toBe(true);
  });
});

describe('MQTT-SN clean session (§6.3)', () => {
  it('keeps subscriptions across a reconnect with CleanSession=false and drops them with true', async () => {
    const c = await h.client({ autoAck: true });
    await c.connect('cs', { clean: false });
    await c.subscribe('keep/me', 0);
    await c.connect('cs', { clean: false });
    h.broker.publish({ topic: 'keep/me', payload: Buffer.from('1'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    await until(() => c.publishes.length === 1, 'delivery to the kept subscription');
    await c.connect('cs', { clean: true });
    h.broker.publish({ topic: 'keep/me', payload: Buffer.from('2'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(c.publishes).toHaveLength(1);
  });

  it('publishes the Will of a client lost after N_retry unanswered retransmissions', async () => {
    const wills = h.watch('wills/#');
    const c = await h.client();
    await c.connect('deaf', { duration: 0, will: { topic: 'wills/deaf', payload: 'x' } });
    await c.subscribe('in', 1);
    h.broker.publish({ topic: 'in', payload: Buffer.from('x'), qos: 1, retain: false, origin: { kind: 'system', id: 't' } });
    await c.next(MsgType.PUBLISH);
    for (let i = 0; i < 2; i++) {
      clock.advance(1_000);
      expect((await c.next(MsgType.PUBLISH)).dup).toBe(true);
    }
    clock.advance(1_000);
    expect(wills).toHaveLength(1);
    expect(state('deaf')).toBeUndefined();
  });
});
