/**
 * Persistent MQTT-SN sessions across a restart of the gateway (src/mqttsn/persistence.ts):
 * two gateways one after the other on the same broker and the same session store, with
 * real UDP sensors. The restarted gateway listens on a new port, so each sensor comes back
 * from a new socket, as a sensor behind NAT would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { MemorySnQueue, MemorySnSessionStore, type SnSessionStore } from '../../src/mqttsn/persistence.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteSnSessions } from '../../src/store/sn-sessions.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { silentLog } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import type { SnTestClient } from '../helpers/mqttsn-client.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

const YAML = 'retry_interval: 1s\nmax_retries: 2\nsession_expiry: 1h';
const harnesses: SnHarness[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const h of harnesses.splice(0).reverse()) await h.close().catch(() => undefined);
  for (const f of cleanups.splice(0).reverse()) await f();
});

const origin = { kind: 'system', id: 'test' } as const;
const publish = (broker: Broker, topic: string, payload: string) => broker.publish({ topic, payload: Buffer.from(payload), qos: 1, retain: false, origin });

async function start(store: MemorySnSessionStore, o: { broker?: Broker; clock?: FakeClock; yaml?: string; queue?: MemorySnQueue } = {}): Promise<SnHarness> {
  const h = await startSnGateway(o.yaml ?? YAML, { store, broker: o.broker, clock: o.clock, queue: o.queue });
  harnesses.push(h);
  return h;
}

/** Stops the first gateway (its sensors' sockets too); the broker goes on for the second. */
async function stopGateway(h: SnHarness, ...clients: SnTestClient[]): Promise<void> {
  for (const c of clients) await c.close();
  await h.gw.stop();
  harnesses.splice(harnesses.indexOf(h), 1);
}

describe('persistent MQTT-SN sessions across a gateway restart', () => {
  it('keeps a CleanSession 0 subscription: a message published before the sensor is back reaches it after its CONNECT', async () => {
    const store = new MemorySnSessionStore();
    const broker = new Broker({}, { log: silentLog });
    const h1 = await start(store, { broker });
    const c1 = await h1.client();
    expect(await c1.connect('valve-3', { clean: false })).toBe(0);
    expect((await c1.subscribe('cmd/valve-3', 1)).returnCode).toBe(0);
    await stopGateway(h1, c1);

    const h2 = await start(store, { broker });
    expect(h2.gw.session('valve-3')?.state).toBe('disconnected');
    await publish(broker, 'cmd/valve-3', 'open');
    const c2 = await h2.client();
    expect(await c2.connect('valve-3', { clean: false })).toBe(0);
    const p = await c2.next(MsgType.PUBLISH);
    expect(p.payload.toString()).toBe('open');
    // The topic id of the subscription is the one the sensor was given before the restart.
    expect(h2.gw.session('valve-3')?.topics.nameOf(p.topicId)).toBe('cmd/valve-3');
  });

  it('keeps the topic ids a sensor registered, so its PUBLISH after the restart is accepted without a new REGISTER', async () => {
    const store = new MemorySnSessionStore();
    const broker = new Broker({}, { log: silentLog });
    const h1 = await start(store, { broker });
    const c1 = await h1.client();
    await c1.connect('meter-1', { clean: false });
    const reg = await c1.register('site/meter-1/kwh');
    await stopGateway(h1, c1);

    const saves = vi.spyOn(store, 'save');
    const h2 = await start(store, { broker });
    expect(saves).not.toHaveBeenCalled(); // a restart rewrites nothing
    const seen = h2.watch('site/#');
    const c2 = await h2.client();
    await c2.connect('meter-1', { clean: false });
    const msgId = c2.publish(reg.topicId, '42.7', { qos: 1 });
    const ack = await c2.next(MsgType.PUBACK, 2000, (a) => a.msgId === msgId);
    expect(ack.returnCode).toBe(0);
    await until(() => seen.length === 1, 'the reading on the bus');
    expect(seen[0]).toMatchObject({ topic: 'site/meter-1/kwh' });
    expect(seen[0]!.payload.toString()).toBe('42.7');
  });

  it('tells a sleeping sensor that wakes after the restart to CONNECT again, and then delivers what was buffered for it', async () => {
    const store = new MemorySnSessionStore();
    const broker = new Broker({}, { log: silentLog });
    const h1 = await start(store, { broker });
    const c1 = await h1.client();
    await c1.connect('tag-9', { clean: false, duration: 30 });
    await c1.subscribe('to/tag-9/#', 1);
    c1.send({ type: MsgType.DISCONNECT, duration: 60 });
    await c1.next(MsgType.DISCONNECT);
    await stopGateway(h1, c1);

    const h2 = await start(store, { broker });
    await publish(broker, 'to/tag-9/led', 'blink');
    const c2 = await h2.client();
    c2.send({ type: MsgType.PINGREQ, clientId: 'tag-9' });
    expect((await c2.next(MsgType.DISCONNECT)).duration).toBeUndefined();
    expect(await c2.connect('tag-9', { clean: false, duration: 30 })).toBe(0);
    const reg = await c2.next(MsgType.REGISTER);
    expect(reg.topicName).toBe('to/tag-9/led');
    c2.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    expect((await c2.next(MsgType.PUBLISH)).payload.toString()).toBe('blink');
  });

  it('keeps the Will: a sensor back after the restart that then goes silent has its Will published', async () => {
    const clock = new FakeClock();
    const store = new MemorySnSessionStore();
    const broker = new Broker({}, { log: silentLog, clock });
    const h1 = await start(store, { broker, clock });
    const c1 = await h1.client();
    await c1.connect('pump-2', { clean: false, duration: 10, will: { topic: 'status/pump-2', payload: 'gone', qos: 1 } });
    await stopGateway(h1, c1);

    const h2 = await start(store, { broker, clock });
    const wills = h2.watch('status/#');
    const c2 = await h2.client();
    // §6.3: CleanSession 0 and Will 0 keep the stored Will.
    expect(await c2.connect('pump-2', { clean: false, duration: 10 })).toBe(0);
    clock.advance(16_000);
    await until(() => wills.length === 1, 'the Will');
    expect(wills[0]!.payload.toString()).toBe('gone');
  });

  it('forgets the stored session on a CleanSession 1 CONNECT, and after the session expiry', async () => {
    const clock = new FakeClock();
    const store = new MemorySnSessionStore();
    const h = await start(store, { clock, yaml: 'session_expiry: 1m' });
    const a = await h.client();
    await a.connect('a', { clean: false });
    await a.subscribe('x/a', 1);
    const b = await h.client();
    await b.connect('b', { clean: false });
    await b.subscribe('x/b', 1);
    expect([...store.records.keys()].sort()).toEqual(['a', 'b']);

    expect(await a.connect('a', { clean: true })).toBe(0);
    expect([...store.records.keys()]).toEqual(['b']);

    b.send({ type: MsgType.DISCONNECT, duration: undefined });
    await b.next(MsgType.DISCONNECT);
    clock.advance(61_000);
    await until(() => h.gw.session('b') === undefined, 'the session to expire');
    expect(store.records.size).toBe(0);
  });

  it('keeps the stored sessions when the gateway stops, and writes nothing for a reading that changes nothing', async () => {
    const store = new MemorySnSessionStore();
    const saves = vi.spyOn(store, 'save');
    const broker = new Broker({}, { log: silentLog });
    const h1 = await start(store, { broker });
    const c = await h1.client();
    await c.connect('s1', { clean: false });
    const reg = await c.register('site/s1');
    let before = saves.mock.calls.length;
    for (let i = 0; i < 6; i++) {
      // The first sleep stores its Duration (a restart waits that long for the sensor); the next five cycles change nothing.
      if (i === 1) before = saves.mock.calls.length;
      await c.connect('s1', { clean: false });
      const id = c.publish(reg.topicId, String(i), { qos: 1 });
      await c.next(MsgType.PUBACK, 2000, (a) => a.msgId === id);
      c.send({ type: MsgType.DISCONNECT, duration: 60 });
      await c.next(MsgType.DISCONNECT);
    }
    expect(saves.mock.calls.length).toBe(before);
    await stopGateway(h1, c);
    expect(JSON.parse(store.records.get('s1')!)).toMatchObject({ topics: [[reg.topicId, 'site/s1', true]] });
  });

  it('skips a damaged record and restores the others', async () => {
    const store = new MemorySnSessionStore();
    store.records.set('bad', '{"subs": 7');
    store.records.set('good', JSON.stringify({ subs: [['cmd/good', 1]], topics: [] }));
    const h = await start(store);
    expect(h.gw.session('bad')).toBeUndefined();
    expect(h.gw.session('good')?.subQos?.get('cmd/good')).toBe(1);
    // Its subscription is on the bus again: a command is held for it until it connects.
    await publish(h.broker, 'cmd/good', 'x');
    expect(h.gw.session('good')?.queue.map((i) => i.msg.topic)).toEqual(['cmd/good']);
  });

  it('keeps the QoS 1 messages buffered for a sleeping sensor across a restart: they go out first, in order, then what came meanwhile', async () => {
    const store = new MemorySnSessionStore();
    const queue = new MemorySnQueue();
    const broker = new Broker({}, { log: silentLog });
    const h1 = await start(store, { broker, queue });
    const c1 = await h1.client();
    await c1.connect('gate-1', { clean: false, duration: 30 });
    await c1.subscribe('cmd/gate-1', 1);
    c1.send({ type: MsgType.DISCONNECT, duration: 600 });
    await c1.next(MsgType.DISCONNECT);
    await publish(broker, 'cmd/gate-1', 'one');
    await publish(broker, 'cmd/gate-1', 'two');
    expect([...queue.rows.values()].map((r) => r.msg.payload.toString())).toEqual(['one', 'two']);
    await stopGateway(h1, c1);

    const h2 = await start(store, { broker, queue });
    await publish(broker, 'cmd/gate-1', 'three');
    const c2 = await h2.client();
    expect(await c2.connect('gate-1', { clean: false, duration: 30 })).toBe(0);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await c2.next(MsgType.PUBLISH);
      got.push(p.payload.toString());
      c2.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    }
    expect(got).toEqual(['one', 'two', 'three']);
    await until(() => queue.rows.size === 0, 'the acknowledged messages to leave the store');
  });

  it('does not store what an awake sensor acknowledged, nor QoS 0, and drops the stored messages with a CleanSession 1 CONNECT', async () => {
    const store = new MemorySnSessionStore();
    const queue = new MemorySnQueue();
    const broker = new Broker({}, { log: silentLog });
    const h = await start(store, { broker, queue });
    const c = await h.client({ autoAck: true });
    await c.connect('lamp-2', { clean: false, duration: 30 });
    await c.subscribe('cmd/lamp-2', 1);
    await publish(broker, 'cmd/lamp-2', 'on');
    expect((await c.next(MsgType.PUBLISH)).payload.toString()).toBe('on');
    await until(() => queue.rows.size === 0, 'the acknowledged message to leave the store');

    c.send({ type: MsgType.DISCONNECT, duration: 600 });
    await c.next(MsgType.DISCONNECT);
    await publish(broker, 'cmd/lamp-2', 'off');
    await broker.publish({ topic: 'cmd/lamp-2', payload: Buffer.from('q0'), qos: 0, retain: false, origin });
    expect([...queue.rows.values()].map((r) => r.msg.payload.toString())).toEqual(['off']);
    expect(h.gw.session('lamp-2')?.queue).toHaveLength(2);

    expect(await c.connect('lamp-2', { clean: true })).toBe(0);
    expect(queue.rows.size).toBe(0);
  });

  it('deletes at start the stored messages of a sensor whose session is not stored, and keeps at most max_buffered_messages', async () => {
    const store = new MemorySnSessionStore();
    const queue = new MemorySnQueue();
    store.records.set('kept', JSON.stringify({ subs: [['cmd/kept', 1]], topics: [] }));
    const msg = (p: string) => ({ topic: 'cmd/kept', payload: Buffer.from(p), qos: 1 as const, retain: false, origin });
    for (const p of ['a', 'b', 'c']) queue.add('kept', msg(p), 1);
    queue.add('gone', msg('x'), 1);
    const h = await start(store, { queue, yaml: `${YAML}\nmax_buffered_messages: 2` });
    expect(h.gw.session('kept')?.queue.map((i) => i.msg.payload.toString())).toEqual(['a', 'b']);
    expect([...queue.rows.values()].map((r) => `${r.clientId} ${r.msg.payload.toString()}`)).toEqual(['kept a', 'kept b']);
  });

  it('answers CONNACK, SUBACK and REGACK of a persistent session only once the session is in the database, without the commit delay', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-sn-persist-'));
    const db = openDatabase({ dir, synchronous: 'full', log: silentLog, clock: new FakeClock() });
    // A commit delay longer than the client waits for an answer: only a prompt commit gets one in time.
    const outbox = new SqliteOutbox({ db, clock: new FakeClock(), log: silentLog, commitWindowMs: 0, commitDelayMs: 5_000 });
    const store = new SqliteSnSessions(db);
    store.attach(outbox.join(store));
    cleanups.push(async () => {
      await outbox.close();
      store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const h = await startSnGateway(YAML, { store });
    harnesses.push(h);
    const c = await h.client();
    expect(await c.connect('v-7', { clean: false })).toBe(0);
    // Connected with the default Keep Alive of the test client: a Will would be owed if it never came back.
    expect(store.load().get('v-7')).toEqual({ subs: [], topics: [], ka: 60, sleep: 0, ended: false });
    expect((await c.subscribe('cmd/v-7', 1)).returnCode).toBe(0);
    expect(store.load().get('v-7')?.subs).toEqual([['cmd/v-7', 1]]);
    const reg = await c.register('site/v-7');
    expect(reg.returnCode).toBe(0);
    expect(store.load().get('v-7')?.topics).toContainEqual([reg.topicId, 'site/v-7', true]);

    // A CleanSession=1 CONNECT right behind a SUBSCRIBE, before that one's commit: the clean
    // session must not end up with the subscription.
    c.send({ type: MsgType.SUBSCRIBE, dup: false, qos: 1, msgId: c.nextMsgId(), topicIdType: 0, topicName: 'cmd/late', topicId: undefined });
    expect(await c.connect('v-7', { clean: true })).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(h.gw.session('v-7')?.subs?.has('cmd/late') ?? false).toBe(false);
    expect(store.load().has('v-7')).toBe(false);
  });

  it('leaves a sensor whose CONNECT got CONNACK 0x01 because its session could not be stored unconnected: its PUBLISH gets DISCONNECT', async () => {
    // A store whose commits fail (a full disk).
    const kept = new MemorySnSessionStore();
    const store: SnSessionStore = {
      load: () => kept.load(),
      save: (id, record) => kept.save(id, record),
      delete: (id) => kept.delete(id),
      committed: () => Promise.reject(new Error('disk full')),
    };
    const h = await startSnGateway(YAML, { store });
    harnesses.push(h);
    const seen = h.watch('#');
    const c = await h.client();
    expect(await c.connect('full-disk', { clean: false })).toBe(ReturnCode.CONGESTION);
    c.publish(0x6162, 'x', { qos: 1, topicIdType: 2 });
    await c.next(MsgType.DISCONNECT);
    expect(await c.none(MsgType.PUBACK)).toBe(true);
    expect(seen).toHaveLength(0);
    expect(h.gw.session('full-disk')?.state).toBe('disconnected');
  });
});
