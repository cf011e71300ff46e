/**
 * Persistent sessions and retained messages across a restart of the broker, on a real
 * SQLite file (issue 5). A restart is a new broker, database and journal on the same
 * directory; `crash()` loses whatever was not committed, like kill -9.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Packet } from 'mqtt-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accessControl } from '../helpers/auth-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { persistentBroker, type PersistHarness, type PersistOptions } from '../helpers/persist-harness.js';
import type { RawClient } from '../helpers/raw-client.js';
import { fromFirst, userPairs, userPropertyPair } from '../helpers/wire.js';

type Publish = Extract<Packet, { cmd: 'publish' }>;

let dir: string;
const running: PersistHarness[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-persist-'));
});
afterEach(async () => {
  for (const h of running.splice(0)) await h.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function boot(o: PersistOptions = {}): Promise<PersistHarness> {
  const h = await persistentBroker(dir, o);
  running.push(h);
  return h;
}

async function restart(h: PersistHarness, how: 'stop' | 'crash', o: PersistOptions = {}): Promise<PersistHarness> {
  if (how === 'stop') await h.stop();
  else h.crash();
  running.splice(running.indexOf(h), 1);
  return boot(o);
}

async function connect(h: PersistHarness, clientId: string, opts: Record<string, unknown> = {}, version: 4 | 5 = 4): Promise<{ c: RawClient; present: boolean }> {
  const c = h.client(version);
  const ack = await c.connect({ clientId, clean: false, ...opts });
  expect(ack.returnCode ?? ack.reasonCode).toBe(0);
  return { c, present: ack.sessionPresent };
}

async function subscribe(c: RawClient, topic: string, qos: 0 | 1 | 2, id = 1): Promise<void> {
  c.send({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic, qos }] } as Packet);
  await c.next('suback');
}

/** Publishes at QoS 1 or 2 and completes the flow. */
async function publish(c: RawClient, topic: string, payload: string, qos: 1 | 2, id: number, retain = false): Promise<void> {
  c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, messageId: id, retain, dup: false } as Packet);
  if (qos === 1) {
    expect((await c.next('puback')).messageId).toBe(id);
    return;
  }
  expect((await c.next('pubrec')).messageId).toBe(id);
  c.send({ cmd: 'pubrel', messageId: id } as Packet);
  await c.next('pubcomp');
}

async function publishes(c: RawClient, n: number): Promise<Publish[]> {
  const out: Publish[] = [];
  for (let i = 0; i < n; i++) out.push(await c.next('publish'));
  return out;
}

describe('persistent sessions across a restart', () => {
  it('delivers the QoS 1 and 2 messages queued for an offline 3.1.1 session after a crash, with its subscription restored', async () => {
    let h = await boot();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'a/#', 2);
    sub.end();
    await sub.waitClosed();
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await publish(pub, 'a/1', 'one', 1, 1);
    await publish(pub, 'a/2', 'two', 2, 2);
    await publish(pub, 'a/3', 'three', 1, 3);
    expect(h.count('deliveries')).toBe(3);

    h = await restart(h, 'crash');
    const { c, present } = await connect(h, 'sub');
    expect(present).toBe(true);
    const got = await publishes(c, 3);
    expect(got.map((p) => [p.topic, p.payload.toString(), p.qos])).toEqual([
      ['a/1', 'one', 1],
      ['a/2', 'two', 2],
      ['a/3', 'three', 1],
    ]);
    // The subscription is back in the routing tree: a new publish reaches it live.
    const { c: pub2 } = await connect(h, 'pub', { clean: true });
    await publish(pub2, 'a/4', 'four', 1, 1);
    expect((await c.next('publish')).payload.toString()).toBe('four');
  });

  it('keeps the order of User Properties of a queued and of a retained message across a crash [MQTT-3.3.2-18]', async () => {
    let h = await boot();
    const { c: sub } = await connect(h, 'sub', { properties: { sessionExpiryInterval: 3600 } }, 5);
    await subscribe(sub, 'q/#', 1);
    sub.end();
    await sub.waitClosed();
    const { c: pub } = await connect(h, 'pub', { clean: true }, 5);
    // Grouped by name, these would come out a, a, b (and "10" before everything): the order to keep is the wire's.
    const props = [...userPropertyPair('a', '1'), ...userPropertyPair('b', '2'), ...userPropertyPair('a', '3'), ...userPropertyPair('10', 'x')];
    const topic = [...Buffer.from('q/t')];
    const body = [0, topic.length, ...topic, 0, 9, props.length, ...props, ...Buffer.from('p')];
    pub.sendRaw([0x33, body.length, ...body]); // QoS 1, retained
    expect((await pub.next('puback')).messageId).toBe(9);

    h = await restart(h, 'crash');
    const expected = ['a=1', 'b=2', 'a=3', '10=x'];
    const queued = h.client(5);
    const wire: Buffer[] = [];
    queued.stream.on('data', (b: Buffer) => wire.push(b));
    await queued.connect({ clientId: 'sub', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await queued.next('publish');
    expect(userPairs(fromFirst(Buffer.concat(wire), 3))).toEqual(expected);

    const fresh = h.client(5);
    await fresh.connect({ clientId: 'late', clean: true });
    const wire2: Buffer[] = [];
    fresh.stream.on('data', (b: Buffer) => wire2.push(b));
    await subscribe(fresh, 'q/#', 0);
    await fresh.next('publish');
    expect(userPairs(fromFirst(Buffer.concat(wire2), 3))).toEqual(expected);
  });

  it('cuts off only the client whose session the journal refused (0x83), and persistence goes on for the others', async () => {
    const h = await boot();
    const save = h.journal.saveSession.bind(h.journal);
    h.journal.saveSession = (rec) => {
      if (rec.clientId === 'refused') throw new Error('this record cannot be stored');
      save(rec);
    };
    const bad = h.client(5);
    bad.send({ cmd: 'connect', clientId: 'refused', protocolVersion: 5, clean: false, keepalive: 0, properties: { sessionExpiryInterval: 60 } } as Packet);
    await bad.waitClosed();
    expect(h.broker.metrics.violations.get('implementation-specific-error')).toBe(1);
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'a/#', 1);
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await publish(pub, 'a/1', 'one', 1, 1);
    expect((await sub.next('publish')).payload.toString()).toBe('one');
    expect(h.count('sessions')).toBe(1);
  });

  it('acknowledges a QoS 1 publish for an offline persistent session only once its copy is in the file', async () => {
    const h = await boot({ commitWindowMs: 50 });
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 't', 1);
    sub.end();
    await sub.waitClosed();
    const { c: pub } = await connect(h, 'pub', { clean: true });
    const before = h.outbox.commits;
    pub.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false } as Packet);
    await pub.next('puback', 3000);
    expect(h.count('deliveries')).toBe(1);
    expect(h.outbox.commits).toBeGreaterThan(before);
  });

  it('resends inflight messages with DUP and their packet ids, and a PUBREL for one already received, after a crash', async () => {
    let h = await boot();
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'q/#', 2);
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await publish(pub, 'q/1', 'one', 1, 1);
    await publish(pub, 'q/2', 'two', 2, 2);
    const [p1, p2] = await publishes(sub, 2);
    // The subscriber acknowledges neither QoS 1 nor fully the QoS 2 one: PUBREC only.
    sub.send({ cmd: 'pubrec', messageId: p2!.messageId } as Packet);
    await sub.next('pubrel');
    await h.journal.committed();

    h = await restart(h, 'crash');
    const { c } = await connect(h, 'sub');
    const again = await c.next('publish');
    expect([again.topic, again.dup, again.messageId]).toEqual(['q/1', true, p1!.messageId]);
    expect((await c.next('pubrel')).messageId).toBe(p2!.messageId);
    c.send({ cmd: 'puback', messageId: p1!.messageId } as Packet);
    c.send({ cmd: 'pubcomp', messageId: p2!.messageId } as Packet);
    await c.settle(50);
    await h.journal.committed();
    expect(h.count('deliveries')).toBe(0);
  });

  it('sends the PUBREL of an outgoing QoS 2 message only once wait-comp is stored, so a crash right after the client completed the flow never resends the PUBLISH [MQTT-4.3.3-6]', async () => {
    // As in the gateway, work nobody waits for (the PUBREC's state change) may be held for a later commit.
    let h = await boot({ commitDelayMs: 250 });
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'q/#', 2);
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await publish(pub, 'q/2', 'two', 2, 1);
    const p = await sub.next('publish');
    await h.journal.committed();
    sub.send({ cmd: 'pubrec', messageId: p.messageId } as Packet);
    expect((await sub.next('pubrel')).messageId).toBe(p.messageId);
    // The client completes the flow and forgets the packet id; the gateway dies at once.
    sub.send({ cmd: 'pubcomp', messageId: p.messageId } as Packet);

    h = await restart(h, 'crash');
    const { c } = await connect(h, 'sub');
    const after = await c.settle(50);
    expect(after.filter((x) => x.cmd === 'publish')).toEqual([]); // a PUBREL again is harmless, a PUBLISH a duplicate
  });

  it('sends PUBCOMP only once the released QoS 2 packet id is stored, so after a crash the client\'s next PUBLISH with that id is a new message', async () => {
    let h = await boot({ commitDelayMs: 250 });
    const { c: sub } = await connect(h, 'sub');
    await subscribe(sub, 'q/#', 1);
    const { c: pub } = await connect(h, 'pub'); // persistent publisher
    await publish(pub, 'q/a', 'first', 2, 5);
    // PUBCOMP came: the client may use packet id 5 again. The gateway dies at once.
    h = await restart(h, 'crash');
    const { c: pub2 } = await connect(h, 'pub');
    pub2.send({ cmd: 'publish', topic: 'q/a', payload: Buffer.from('second'), qos: 2, messageId: 5, retain: false, dup: false } as Packet);
    expect((await pub2.next('pubrec')).messageId).toBe(5);
    pub2.send({ cmd: 'pubrel', messageId: 5 } as Packet);
    await pub2.next('pubcomp');
    const { c } = await connect(h, 'sub');
    expect((await publishes(c, 2)).map((x) => String(x.payload))).toEqual(['first', 'second']);
  });

  it('answers a clean-session CONNECT only once the discarded stored session left the file, so a crash right after never brings it back [MQTT-3.1.2-4]', async () => {
    let h = await boot({ commitDelayMs: 250 });
    const { c } = await connect(h, 'dev');
    await subscribe(c, 'old/#', 1);
    c.send({ cmd: 'disconnect' } as Packet);
    await c.waitClosed();
    await h.journal.committed();
    const clean = await connect(h, 'dev', { clean: true });
    expect(clean.present).toBe(false); // told: the old session is gone
    h = await restart(h, 'crash');
    const again = await connect(h, 'dev');
    expect(again.present).toBe(false);
    expect(h.count('subscriptions')).toBe(0);
  });

  it('does not deliver twice a QoS 2 PUBLISH resent after a crash when the PUBREC had already been sent', async () => {
    let h = await boot();
    const { c: sub } = await connect(h, 'sub', { clean: true });
    await subscribe(sub, 'x', 2);
    const { c: pub } = await connect(h, 'pub'); // persistent publisher
    pub.send({ cmd: 'publish', topic: 'x', payload: Buffer.from('once'), qos: 2, messageId: 9, retain: false, dup: false } as Packet);
    await pub.next('pubrec');
    expect(h.count('qos2_in')).toBe(1);

    h = await restart(h, 'crash');
    const { c: sub2 } = await connect(h, 'sub2', { clean: true });
    await subscribe(sub2, 'x', 2);
    const { c: pub2, present } = await connect(h, 'pub');
    expect(present).toBe(true);
    pub2.send({ cmd: 'publish', topic: 'x', payload: Buffer.from('once'), qos: 2, messageId: 9, retain: false, dup: true } as Packet);
    expect((await pub2.next('pubrec')).messageId).toBe(9);
    pub2.send({ cmd: 'pubrel', messageId: 9 } as Packet);
    await pub2.next('pubcomp');
    expect((await sub2.settle(50)).filter((p) => p.cmd === 'publish')).toEqual([]);
    await h.journal.committed();
    expect(h.count('qos2_in')).toBe(0);
  });

  it('keeps a session whose expiry has time left, and drops one whose expiry passed while the gateway was down', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    const short = await connect(h, 'short', { clean: false, properties: { sessionExpiryInterval: 10 } }, 5);
    await subscribe(short.c, 's', 1);
    const long = await connect(h, 'long', { clean: false, properties: { sessionExpiryInterval: 60 } }, 5);
    await subscribe(long.c, 'l', 1);
    short.c.send({ cmd: 'disconnect' } as Packet);
    long.c.send({ cmd: 'disconnect' } as Packet);
    await short.c.waitClosed();
    await long.c.waitClosed();
    await h.journal.committed();

    h = await restart(h, 'stop', { clock });
    clock.advance(30_000); // 30 s later: short (10 s) is over, long (60 s) has 30 s left
    await h.stop();
    running.splice(running.indexOf(h), 1);
    h = await boot({ clock });
    expect(h.count('sessions')).toBe(1);
    const s = await connect(h, 'short', { clean: false, properties: { sessionExpiryInterval: 10 } }, 5);
    expect(s.present).toBe(false);
    s.c.end();
    const l = await connect(h, 'long', { clean: false, properties: { sessionExpiryInterval: 60 } }, 5);
    expect(l.present).toBe(true);
  });

  it('expires a restored session after what was left of its expiry', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    const { c } = await connect(h, 'e', { clean: false, properties: { sessionExpiryInterval: 10 } }, 5);
    c.send({ cmd: 'disconnect' } as Packet);
    await c.waitClosed();
    clock.advance(4000);
    h = await restart(h, 'stop', { clock });
    expect(h.broker.sessionCount).toBe(1);
    clock.advance(6500);
    expect(h.broker.sessionCount).toBe(0);
    await h.journal.committed();
    expect(h.count('sessions')).toBe(0);
  });

  it('removes every row of a session that reconnects with clean session, and never writes clean sessions or QoS 0', async () => {
    const h = await boot();
    const { c } = await connect(h, 'p');
    await subscribe(c, 'z/#', 1);
    c.end();
    await c.waitClosed();
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await publish(pub, 'z/1', 'q1', 1, 1);
    expect(h.count('deliveries')).toBe(1);
    const again = await connect(h, 'p', { clean: true });
    expect(again.present).toBe(false);
    await h.journal.committed();
    expect([h.count('sessions'), h.count('subscriptions'), h.count('deliveries')]).toEqual([0, 0, 0]);

    await subscribe(again.c, 'z/#', 1);
    const writes = h.journal.writes;
    await publish(pub, 'z/2', 'q1', 1, 2);
    pub.send({ cmd: 'publish', topic: 'z/3', payload: Buffer.from('q0'), qos: 0, retain: false, dup: false } as Packet);
    await again.c.next('publish');
    expect(h.journal.writes).toBe(writes);
  });

  it('keeps only the oldest messages within the per-client caps when the file holds more', async () => {
    let h = await boot();
    const { c } = await connect(h, 'cap');
    await subscribe(c, 'm', 1);
    c.end();
    await c.waitClosed();
    const { c: pub } = await connect(h, 'pub', { clean: true });
    for (let i = 1; i <= 30; i++) await publish(pub, 'm', `n${i}`, 1, i);
    h = await restart(h, 'stop', { broker: { maxQueuedMessages: 10 } });
    expect(h.count('deliveries')).toBe(10);
    const { c: back } = await connect(h, 'cap');
    const got = await publishes(back, 10);
    expect(got.map((p) => p.payload.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `n${i + 1}`));
    expect(await back.settle(30)).toEqual([]);
  });

  it('stores a subscription before its SUBACK and removes it before its UNSUBACK', async () => {
    const h = await boot({ commitWindowMs: 30 });
    const { c } = await connect(h, 's');
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'f/+', qos: 1 }] } as Packet);
    await c.next('suback');
    expect(h.count('subscriptions')).toBe(1);
    c.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['f/+'] } as Packet);
    await c.next('unsuback');
    expect(h.count('subscriptions')).toBe(0);
  });

  it('commits a publish that is bridged and queued for a persistent session in one transaction', async () => {
    const h = await boot({ commitWindowMs: 20 });
    h.broker.addDurableSink({ name: 'cloud', selects: () => true, accept: (m) => h.outbox.append('cloud', m) });
    const { c } = await connect(h, 'sub');
    await subscribe(c, 'b', 1);
    c.end();
    await c.waitClosed();
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await h.journal.committed();
    await new Promise((r) => setTimeout(r, 30));
    const before = h.outbox.commits;
    await publish(pub, 'b', 'both', 1, 1);
    expect(h.outbox.commits - before).toBe(1);
    expect([h.count('outbox'), h.count('deliveries')]).toEqual([1, 1]);
  });

  it('restores shared subscriptions and subscription identifiers into the routing tree', async () => {
    let h = await boot();
    const { c } = await connect(h, 'v5sub', { clean: false, properties: { sessionExpiryInterval: 600 } }, 5);
    c.send({ cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 9 }, subscriptions: [{ topic: 'id/+', qos: 1 }] } as Packet);
    await c.next('suback');
    c.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: '$share/g/sh/#', qos: 1 }] } as Packet);
    await c.next('suback');
    c.send({ cmd: 'disconnect' } as Packet);
    await c.waitClosed();
    h = await restart(h, 'crash');
    const { c: pub } = await connect(h, 'pub', { clean: true });
    await publish(pub, 'id/1', 'with id', 1, 1);
    await publish(pub, 'sh/x', 'shared', 1, 2);
    const back = await connect(h, 'v5sub', { clean: false, properties: { sessionExpiryInterval: 600 } }, 5);
    expect(back.present).toBe(true);
    const got = await publishes(back.c, 2);
    expect(got.map((p) => [p.topic, p.payload.toString(), p.properties?.subscriptionIdentifier])).toEqual([
      ['id/1', 'with id', 9],
      ['sh/x', 'shared', undefined],
    ]);
  });

  it('keeps the session of a v5 client that set its expiry to 0 at DISCONNECT out of the file', async () => {
    const h = await boot();
    const { c } = await connect(h, 'v5', { clean: false, properties: { sessionExpiryInterval: 100 } }, 5);
    await subscribe(c, 'k', 1);
    expect(h.count('sessions')).toBe(1);
    c.send({ cmd: 'disconnect', properties: { sessionExpiryInterval: 0 } } as Packet);
    await c.waitClosed();
    await h.journal.committed();
    expect([h.count('sessions'), h.count('subscriptions')]).toEqual([0, 0]);
  });

  it('reads a restored subscription with its user\'s ACL rights: an offline session gets after a restart only what the user may read', async () => {
    // Anonymous clients may read more than bob: the session must be read as bob's, not as nobody's.
    const acl = 'user bob\nread home/+/temp\nuser alice\nreadwrite home/#\nanonymous\nread home/#\n';
    const access = async () => accessControl({ users: { alice: 'a', bob: 'b' }, acl });
    let h = await boot({ access: await access() });
    const { c: bob } = await connect(h, 'bob-1', { username: 'bob', password: Buffer.from('b') });
    await subscribe(bob, 'home/#', 1); // granted in part: only home/+/temp is delivered
    bob.end();
    await bob.waitClosed();

    h = await restart(h, 'stop', { access: await access() });
    const { c: alice } = await connect(h, 'alice-1', { clean: true, username: 'alice', password: Buffer.from('a') });
    await publish(alice, 'home/a/hum', 'not for bob', 1, 1);
    await publish(alice, 'home/a/temp', 'for bob', 1, 2);
    const { c: back, present } = await connect(h, 'bob-1', { username: 'bob', password: Buffer.from('b') });
    expect(present).toBe(true);
    const got = await back.next('publish');
    expect([got.topic, got.payload.toString()]).toEqual(['home/a/temp', 'for bob']);
    await publish(alice, 'home/b/hum', 'not for bob either', 1, 3);
    await publish(alice, 'home/b/temp', 'live', 1, 4);
    expect((await back.next('publish')).topic).toBe('home/b/temp');
  });
});

describe('Wills of persistent sessions across a restart', () => {
  const will = { topic: 'status/dev', payload: Buffer.from('offline'), qos: 1 as const, retain: false };
  /** Will messages as they reach the bus of the restarted broker. */
  function watch(h: PersistHarness): string[] {
    const seen: string[] = [];
    h.broker.subscribe('status/#', { kind: 'system', id: 'watch' }, { qos: 1 }, (m) => seen.push(`${m.topic} ${m.payload.toString()}`));
    return seen;
  }
  /** The Will reaches the bus `ms` from now (within 0.1 s), not before. */
  function willDueIn(clock: FakeClock, seen: string[], ms: number): void {
    clock.advance(ms - 100);
    expect(seen).toEqual([]);
    clock.advance(200);
    expect(seen).toEqual(['status/dev offline']);
  }

  it('keeps the Will of a client still connected at a clean stop, like at a crash: published if it does not come back within 1.5 × its keepalive', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    await connect(h, 'dev', { keepalive: 10, will });
    await h.journal.committed();
    h = await restart(h, 'stop', { clock }); // SIGTERM: the server closes the connection, the client sent no DISCONNECT
    willDueIn(clock, watch(h), 15_000);
  });

  it('publishes the Will of a client connected at the crash that does not come back within 1.5 × its keepalive, once', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    await connect(h, 'dev', { keepalive: 10, will });
    await h.journal.committed();
    h = await restart(h, 'crash', { clock });
    willDueIn(clock, watch(h), 15_000);
    // Published, so no longer stored: the next restart does not owe it again.
    await h.journal.committed();
    h = await restart(h, 'crash', { clock });
    const again = watch(h);
    clock.advance(60_000);
    expect(again).toEqual([]);
  });

  it('publishes after a crash the Will of a user\'s session that only that user may write, and not one the ACL now refuses', async () => {
    const clock = new FakeClock();
    const access = async (acl: string) => accessControl({ users: { alice: 'a' }, acl });
    let h = await boot({ clock, access: await access('user alice\nwrite status/#\n') });
    await connect(h, 'dev', { keepalive: 10, will, username: 'alice', password: Buffer.from('a') });
    await connect(h, 'dev2', { keepalive: 10, will: { ...will, topic: 'status/dev2' }, username: 'alice', password: Buffer.from('a') });
    await h.journal.committed();
    h = await restart(h, 'crash', { clock, access: await access('user alice\nwrite status/dev\n') });
    willDueIn(clock, watch(h), 15_000); // status/dev only
    expect(h.broker.metrics.denials.get('will')).toBe(1);
  });

  it('does not publish it when the client reconnects in time, nor after a normal DISCONNECT', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    await connect(h, 'dev', { keepalive: 10, will });
    const other = await connect(h, 'other', { keepalive: 10, will: { ...will, topic: 'status/other' } });
    other.c.send({ cmd: 'disconnect' } as Packet);
    await other.c.waitClosed();
    await h.journal.committed();
    h = await restart(h, 'crash', { clock });
    const seen = watch(h);
    clock.advance(5_000);
    const back = await connect(h, 'dev', { keepalive: 10 });
    expect(back.present).toBe(true);
    clock.advance(60_000);
    expect(seen).toEqual([]);
  });

  it('keeps the due time of a Will whose delay was running at the crash', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    const { c } = await connect(h, 'dev', { keepalive: 10, properties: { sessionExpiryInterval: 300 }, will: { ...will, properties: { willDelayInterval: 30 } } }, 5);
    c.destroy(); // no DISCONNECT: the Will Delay starts
    await c.waitClosed();
    await h.journal.committed();
    clock.advance(10_000);
    h = await restart(h, 'crash', { clock });
    willDueIn(clock, watch(h), 20_000);
  });

  it('publishes at start the Will of a session that expired while the gateway was down, to a persistent subscriber, once', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    const dash = await connect(h, 'dash');
    await subscribe(dash.c, 'status/#', 1);
    dash.c.destroy();
    const dev = await connect(h, 'dev', { keepalive: 10, properties: { sessionExpiryInterval: 20 }, will: { ...will, properties: { willDelayInterval: 60 } } }, 5);
    dev.c.destroy(); // the session ends 20 s later, before its 60 s Will Delay: its end owes the Will
    await dev.c.waitClosed();
    await h.journal.committed();
    // Down for a minute (a new clock: the crashed broker's timers stay behind): it expired meanwhile.
    const later = new FakeClock(clock.now() + 60_000);
    h = await restart(h, 'crash', { clock: later });
    await h.journal.committed();
    expect(h.count('sessions')).toBe(1); // dash's
    h = await restart(h, 'crash', { clock: later }); // owed once: this start publishes nothing
    expect(h.count('deliveries')).toBe(1);
    const back = await connect(h, 'dash');
    expect(back.present).toBe(true);
    const got = await publishes(back.c, 1);
    expect(`${got[0]!.topic} ${got[0]!.payload.toString()}`).toBe('status/dev offline');
  });
});

describe('retained messages across a restart', () => {
  it('keeps set and replaced retained messages, forgets cleared and expired ones', async () => {
    const clock = new FakeClock();
    let h = await boot({ clock });
    const { c: pub } = await connect(h, 'pub', { clean: true }, 5);
    await publish(pub, 'r/a', 'a1', 1, 1, true);
    await publish(pub, 'r/a', 'a2', 1, 2, true);
    await publish(pub, 'r/b', 'b', 1, 3, true);
    await publish(pub, 'r/b', '', 1, 4, true);
    pub.send({ cmd: 'publish', topic: 'r/e', payload: Buffer.from('short'), qos: 1, messageId: 5, retain: true, dup: false, properties: { messageExpiryInterval: 5 } } as Packet);
    await pub.next('puback');
    pub.send({ cmd: 'publish', topic: 'r/q0', payload: Buffer.from('zero'), qos: 0, retain: true, dup: false } as Packet);
    await pub.settle(20);
    h = await restart(h, 'crash', { clock });
    clock.advance(10_000);
    h = await restart(h, 'stop', { clock });
    const { c } = await connect(h, 'reader', { clean: true });
    await subscribe(c, 'r/#', 1);
    const got = (await c.settle(50)).filter((p): p is Publish => p.cmd === 'publish');
    expect(got.map((p) => [p.topic, p.payload.toString(), p.retain]).sort()).toEqual([
      ['r/a', 'a2', true],
      ['r/q0', 'zero', true],
    ]);
    expect(h.count('retained')).toBe(2);
  });

  it('writes neither sessions nor retained messages when both switches are off', async () => {
    let h = await boot({ persistSessions: false, persistRetained: false });
    const { c } = await connect(h, 'off');
    await subscribe(c, 'o', 1);
    await publish(c, 'o/r', 'kept in memory', 1, 1, true);
    expect([h.count('sessions'), h.count('retained')]).toEqual([0, 0]);
    h = await restart(h, 'stop', { persistSessions: false, persistRetained: false });
    expect((await connect(h, 'off')).present).toBe(false);
  });
});
