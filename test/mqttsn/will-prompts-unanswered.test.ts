/**
 * A CONNECT with the Will flag whose Will prompts go unanswered (MQTT-SN v1.2 §6.2, §6.13),
 * over real UDP datagrams: it takes effect only when its Will exchange completes, so an
 * unanswered one leaves the client as it was, active or not connected alike.
 */
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
const publishLocally = (topic: string, payload: string) =>
  h.broker.publish({ topic, payload: Buffer.from(payload), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });

describe('a CONNECT whose WILLTOPICREQ is never answered', () => {
  it('leaves an active client as it was: still active, with its subscriptions and its Will, and lost on its old Keep Alive with that Will', async () => {
    const wills = h.watch('wills/#');
    const c = await h.client({ autoAck: true });
    expect(await c.connect('a1', { duration: 10, will: { topic: 'wills/a1', payload: 'gone' } })).toBe(ReturnCode.ACCEPTED);
    await c.subscribe('keep/me', 0);

    // The sensor sends a new CONNECT (CleanSession, another Keep Alive) and never answers the prompt.
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 60, clientId: 'a1' });
    await c.next(MsgType.WILLTOPICREQ);
    clock.advance(3_001); // T_retry × (N_retry + 1): the CONNECT is dropped
    expect(state('a1')).toBe('active');
    publishLocally('keep/me', 'still subscribed');
    await until(() => c.publishes.length === 1, 'delivery to the subscription the unanswered CONNECT did not clear');
    expect(wills).toHaveLength(0);

    clock.advance(12_000); // 15 s after its last message: 1.5 × its old Keep Alive of 10 s, not the 60 s asked
    expect(wills.map((m) => [m.topic, m.payload.toString()])).toEqual([['wills/a1', 'gone']]);
    expect(state('a1')).toBeUndefined(); // lost, and its CleanSession=1 session ended
  });

  it('leaves a new client unconnected, as before: the session is gone and its next message is answered with DISCONNECT', async () => {
    const c = await h.client();
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: false, protocolId: 1, duration: 10, clientId: 'n1' });
    await c.next(MsgType.WILLTOPICREQ);
    clock.advance(3_001);
    expect(state('n1')).toBeUndefined();
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    await c.next(MsgType.DISCONNECT);
  });

  it('takes effect all at once when the exchange completes late but in time: the new Will replaces the old, CleanSession drops the subscriptions, the new Keep Alive holds', async () => {
    const wills = h.watch('wills/#');
    const c = await h.client({ autoAck: true });
    await c.connect('a2', { duration: 10, will: { topic: 'wills/old', payload: 'old' } });
    await c.subscribe('drop/me', 0);
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 60, clientId: 'a2' });
    await c.next(MsgType.WILLTOPICREQ);
    clock.advance(2_000);
    c.send({ type: MsgType.WILLTOPIC, qos: 0, retain: false, topic: 'wills/new' });
    await c.next(MsgType.WILLMSGREQ);
    c.send({ type: MsgType.WILLMSG, payload: Buffer.from('new') });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(ReturnCode.ACCEPTED);
    publishLocally('drop/me', 'x');
    await new Promise((r) => setTimeout(r, 100));
    expect(c.publishes).toHaveLength(0);
    clock.advance(60_000); // within 1.5 × 60 s
    expect(state('a2')).toBe('active');
    clock.advance(30_001);
    expect(wills.map((m) => [m.topic, m.payload.toString()])).toEqual([['wills/new', 'new']]);
  });
});
