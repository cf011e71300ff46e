import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import dgram from 'node:dgram';
import { encode } from '../../src/mqttsn/encode.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness;
let clock: FakeClock;
beforeEach(async () => {
  clock = new FakeClock();
  h = await startSnGateway('retry_interval: 1s\nmax_retries: 2\nmax_buffered_messages: 4', { clock });
});
afterEach(async () => h.close());

const state = (id: string) => h.gw.session(id)?.state;
const local = (topic: string, payload: string, qos: 0 | 1 | 2 = 1) => h.local(topic, payload, qos);
const pause = (ms = 80) => new Promise((r) => setTimeout(r, ms));

async function sleeper(id: string, will?: { topic: string; payload: string }) {
  const c = await h.client();
  await c.connect(id, { clean: false, duration: 30, will });
  await c.subscribe('to/#', 1);
  c.send({ type: MsgType.DISCONNECT, duration: 60 });
  await c.next(MsgType.DISCONNECT);
  expect(state(id)).toBe('asleep');
  return c;
}

describe('MQTT-SN sleeping clients (§6.14)', () => {
  it('buffers while asleep and on PINGREQ(ClientId) delivers REGISTER first, then PUBLISH, then PINGRESP once acked', async () => {
    const c = await sleeper('zz');
    local('to/a', 'one', 1);
    local('to/a', 'two', 0);
    await pause();
    expect(c.arrivals.filter((t) => t === MsgType.PUBLISH || t === MsgType.REGISTER)).toHaveLength(0);

    c.send({ type: MsgType.PINGREQ, clientId: 'zz' });
    const reg = await c.next(MsgType.REGISTER);
    expect(reg.topicName).toBe('to/a');
    expect(state('zz')).toBe('awake');
    c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    const p1 = await c.next(MsgType.PUBLISH);
    expect(p1).toMatchObject({ qos: 1, topicId: reg.topicId });
    // No PINGRESP while the QoS 1 message is unacknowledged.
    expect(await c.none(MsgType.PINGRESP, 150)).toBe(true);
    c.send({ type: MsgType.PUBACK, topicId: p1.topicId, msgId: p1.msgId, returnCode: 0 });
    const p2 = await c.next(MsgType.PUBLISH);
    expect(p2.payload.toString()).toBe('two');
    await c.next(MsgType.PINGRESP);
    expect(c.arrivals.slice(-4)).toEqual([MsgType.REGISTER, MsgType.PUBLISH, MsgType.PUBLISH, MsgType.PINGRESP]);
    expect(state('zz')).toBe('asleep');
  });

  it('answers PINGRESP at once when nothing is buffered', async () => {
    const c = await sleeper('empty');
    c.send({ type: MsgType.PINGREQ, clientId: 'empty' });
    await c.next(MsgType.PINGRESP);
    expect(state('empty')).toBe('asleep');
  });

  it('bounds the buffer and counts what it drops', async () => {
    const c = await sleeper('full');
    for (let i = 0; i < 7; i++) local('to/x', `${i}`, 1);
    expect(h.gw.metrics.dropped('buffer-full')).toBe(3);
    const s = h.gw.session('full')!;
    expect(s.queue).toHaveLength(4);
    void c;
  });

  it('loses a client whose sleep timer expires and publishes its Will', async () => {
    const wills = h.watch('wills/#');
    await sleeper('sleepy', { topic: 'wills/sleepy', payload: 'dead' });
    clock.advance(89_000);
    expect(state('sleepy')).toBe('asleep');
    clock.advance(1_001); // 1.5 × the sleep Duration
    expect(state('sleepy')).toBe('lost');
    expect(wills.map((m) => m.payload.toString())).toEqual(['dead']);
  });

  it('restarts the sleep timer each time the client goes back to sleep after a wake-up', async () => {
    const c = await sleeper('cycle');
    for (let i = 0; i < 4; i++) {
      clock.advance(80_000);
      c.send({ type: MsgType.PINGREQ, clientId: 'cycle' });
      await c.next(MsgType.PINGRESP);
    }
    expect(state('cycle')).toBe('asleep');
  });

  it('keeps an awake client that woke late in its window while it is still acknowledging its buffered messages', async () => {
    const wills = h.watch('wills/#');
    const c = await sleeper('late', { topic: 'wills/late', payload: 'dead' });
    h.gw.session('late')!.topics.assign('to/l', true);
    local('to/l', '1', 1);
    local('to/l', '2', 1);
    clock.advance(89_500); // the sleep deadline is 90 s (1.5 × 60 s) after the DISCONNECT
    c.send({ type: MsgType.PINGREQ, clientId: 'late' });
    const p1 = await c.next(MsgType.PUBLISH);
    clock.advance(800); // a slow radio: the PUBACK comes after the original deadline
    expect(state('late')).toBe('awake');
    c.send({ type: MsgType.PUBACK, topicId: p1.topicId, msgId: p1.msgId, returnCode: 0 });
    const p2 = await c.next(MsgType.PUBLISH);
    clock.advance(800);
    expect(state('late')).toBe('awake');
    c.send({ type: MsgType.PUBACK, topicId: p2.topicId, msgId: p2.msgId, returnCode: 0 });
    await c.next(MsgType.PINGRESP);
    expect(state('late')).toBe('asleep');
    expect(wills).toHaveLength(0);
  });

  it('delivers the buffer after CONNECT with CleanSession=false, following the CONNACK', async () => {
    const c = await sleeper('back');
    local('to/b', 'kept', 1);
    c.send({ type: MsgType.CONNECT, will: false, cleanSession: false, protocolId: 1, duration: 30, clientId: 'back' });
    await c.next(MsgType.CONNACK);
    const reg = await c.next(MsgType.REGISTER);
    c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    expect((await c.next(MsgType.PUBLISH)).payload.toString()).toBe('kept');
    expect(state('back')).toBe('active');
    expect(c.arrivals.indexOf(MsgType.CONNACK)).toBeLessThan(c.arrivals.indexOf(MsgType.REGISTER));
  });

  it('follows a sleeper that wakes up from a new address (NAT rebinding)', async () => {
    await sleeper('nat');
    local('to/n', 'x', 0);
    const moved = await h.client({ autoAck: true });
    moved.send({ type: MsgType.PINGREQ, clientId: 'nat' });
    await moved.next(MsgType.PINGRESP);
    expect(moved.publishes.map((p) => p.payload.toString())).toEqual(['x']);
  });

  it('keeps a sleeper asleep, Will unsent and buffer kept, when another client CONNECTs from its old address', async () => {
    const wills = h.watch('wills/#');
    const c = await SnTestClient.open({ port: h.port });
    await c.connect('roamer', { clean: true, duration: 30, will: { topic: 'wills/roamer', payload: 'dead' } });
    await c.subscribe('to/#', 1);
    c.send({ type: MsgType.DISCONNECT, duration: 60 });
    await c.next(MsgType.DISCONNECT);
    local('to/r', 'kept', 1);
    const oldPort = c.localPort;
    await c.close();
    // The NAT hands the sleeper's old port to another sensor.
    const other = dgram.createSocket('udp4');
    await new Promise<void>((r) => other.bind(oldPort, '127.0.0.1', () => r()));
    const connack = new Promise<void>((r) => other.once('message', () => r()));
    other.send(encode({ type: MsgType.CONNECT, will: false, cleanSession: true, protocolId: 1, duration: 30, clientId: 'newcomer' }), h.port, '127.0.0.1');
    await connack;
    other.close();
    expect(state('roamer')).toBe('asleep');
    expect(wills).toHaveLength(0);
    const moved = await h.client({ autoAck: true });
    moved.send({ type: MsgType.PINGREQ, clientId: 'roamer' });
    await moved.next(MsgType.PINGRESP);
    expect(moved.publishes.map((p) => p.payload.toString())).toEqual(['kept']);
  });

  it('ends the sleep with DISCONNECT without Duration: disconnected, no Will', async () => {
    const wills = h.watch('wills/#');
    const c = await sleeper('bye', { topic: 'wills/bye', payload: 'x' });
    c.send({ type: MsgType.PINGREQ, clientId: 'bye' });
    await c.next(MsgType.PINGRESP);
    c.send({ type: MsgType.DISCONNECT, duration: undefined });
    await c.next(MsgType.DISCONNECT);
    expect(state('bye')).toBe('disconnected');
    clock.advance(200_000);
    expect(wills).toHaveLength(0);
  });

  it('keeps awake clients awake until the PINGRESP even if buffered messages keep arriving', async () => {
    const c = await sleeper('busy');
    h.gw.session('busy')!.topics.assign('to/k', true);
    local('to/k', '1', 1);
    c.send({ type: MsgType.PINGREQ, clientId: 'busy' });
    const p = await c.next(MsgType.PUBLISH);
    local('to/k', 'later', 1); // arrives while awake: kept for the next wake-up
    c.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    await c.next(MsgType.PINGRESP);
    await until(() => h.gw.session('busy')!.queue.length === 1, 'the later message to stay buffered');
    expect(state('busy')).toBe('asleep');
  });
});
