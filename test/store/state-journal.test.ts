/**
 * The SQLite state journal on a real database file: what each recorded change leaves in
 * the file after the commit it rides in, what restore() gives back and deletes, and how
 * a failed commit is reported and retried.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import type { RestoreLimits, StoredDelivery } from '../../src/core/persistence.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { SqliteStateJournal } from '../../src/store/state-journal.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
const limits: RestoreLimits = { maxQueuedMessages: 1000, maxQueuedBytes: 1 << 20, maxSessionExpiry: 7 * 86400 };
let dir: string;
let clock: FakeClock;
const cleanup: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-journal-'));
  clock = new FakeClock();
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  rmSync(dir, { recursive: true, force: true });
});

interface Open {
  db: StoreDatabase;
  outbox: SqliteOutbox;
  journal: SqliteStateJournal;
  count(table: string): number;
  close(): Promise<void>;
}

function openJournal(o: { sessions?: boolean; retained?: boolean } = {}): Open {
  const db = openDatabase({ dir, synchronous: 'normal', log, clock });
  const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
  const journal = new SqliteStateJournal({ db, persistSessions: o.sessions ?? true, persistRetained: o.retained ?? true });
  journal.attach(outbox.join(journal));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await outbox.close();
    journal.close();
    db.close();
  };
  cleanup.push(close);
  return { db, outbox, journal, close, count: (t) => db.handle.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number };
}

function msg(topic: string, payload: string, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'pub' }, ...extra };
}

function delivery(j: SqliteStateJournal, m: Message, extra: Partial<StoredDelivery> = {}): StoredDelivery {
  return { id: j.nextDeliveryId(), msg: m, qos: 1, retainFlag: false, subIds: undefined, packetId: 0, state: 'queued', ...extra };
}

describe('the state journal', () => {
  it('gives back sessions, subscriptions with their options, deliveries and QoS 2 ids as written', async () => {
    const a = openJournal();
    const j = a.journal;
    j.saveSession({ clientId: 'c1', protocolVersion: 5, expiryInterval: 300, offlineAt: clock.now() });
    j.saveSubscription('c1', { filter: 'a/+', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 42 });
    j.saveSubscription('c1', { filter: '$share/g/b/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined });
    const rich = msg('a/1', 'payload', {
      qos: 2,
      retain: true,
      expiresAt: clock.now() + 60_000,
      properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2]), userProperties: { k: 'v' } },
    });
    j.addDelivery('c1', delivery(j, rich, { qos: 2, retainFlag: true, subIds: [42, 7], packetId: 5, state: 'wait-rec' }));
    j.addDelivery('c1', delivery(j, msg('a/2', 'queued')));
    j.addQos2('c1', 77);
    await j.committed();
    await a.close();

    const b = openJournal();
    const r = b.journal.restore(clock.now(), limits);
    expect(r.sessions).toHaveLength(1);
    const s = r.sessions[0]!;
    expect([s.clientId, s.protocolVersion, s.expiryInterval, s.offlineAt]).toEqual(['c1', 5, 300, clock.now()]);
    expect(s.subscriptions.sort((x, y) => x.filter.localeCompare(y.filter))).toEqual([
      { filter: '$share/g/b/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined },
      { filter: 'a/+', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 42 },
    ]);
    expect(s.deliveries.map((d) => [d.msg.topic, d.msg.payload.toString(), d.qos, d.retainFlag, d.subIds, d.packetId, d.state])).toEqual([
      ['a/1', 'payload', 2, true, [42, 7], 5, 'wait-rec'],
      ['a/2', 'queued', 1, false, undefined, 0, 'queued'],
    ]);
    expect(s.deliveries[0]!.msg).toEqual(rich);
    expect(s.qos2In).toEqual([77]);
  });

  it('writes nothing for a delivery added and removed before the commit, and the amended state of one updated before it', async () => {
    const { journal: j, count, db } = openJournal();
    j.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 60, offlineAt: undefined });
    const gone = delivery(j, msg('t', 'acked at once'));
    j.addDelivery('c', gone);
    j.updateDelivery(gone.id, 3, 'wait-ack');
    j.removeDelivery(gone.id);
    const kept = delivery(j, msg('t', 'inflight'));
    j.addDelivery('c', kept);
    j.updateDelivery(kept.id, 4, 'wait-ack');
    await j.committed();
    expect(count('deliveries')).toBe(1);
    expect(db.handle.prepare('SELECT packet_id, state FROM deliveries').get()).toEqual({ packet_id: 4, state: 1 });
    j.updateDelivery(kept.id, 4, 'wait-comp');
    await j.committed();
    expect(db.handle.prepare('SELECT state FROM deliveries').pluck().get()).toBe(3);
    j.removeDelivery(kept.id);
    await j.committed();
    expect(count('deliveries')).toBe(0);
  });

  it('keeps the last retained message of a topic, clears it on an empty payload, and leaves $SYS topics out', async () => {
    const { journal: j, count, db } = openJournal();
    j.retain(msg('r/a', 'first'));
    j.retain(msg('r/a', 'second'));
    j.retain(msg('r/b', 'b'));
    j.retain(msg('$SYS/outpost/bridge/cloud/state', 'up'));
    await j.committed();
    expect(db.handle.prepare('SELECT topic, payload FROM retained ORDER BY topic').all()).toEqual([
      { topic: 'r/a', payload: Buffer.from('second') },
      { topic: 'r/b', payload: Buffer.from('b') },
    ]);
    j.retain(msg('r/b', ''));
    await j.committed();
    expect(count('retained')).toBe(1);
  });

  it('shares one transaction among the changes recorded before a commit', async () => {
    const { journal: j, outbox } = openJournal();
    const before = outbox.commits;
    j.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 60, offlineAt: undefined });
    for (let i = 0; i < 100; i++) j.addDelivery('c', delivery(j, msg('t', `m${i}`)));
    const appended = outbox.append('cloud', msg('t', 'bridged'));
    await Promise.all([j.committed(), appended]);
    expect(outbox.commits - before).toBe(1);
  });

  it('rejects the waiters of a failed commit and writes the same changes in the next one', async () => {
    const { journal: j, db, count } = openJournal();
    db.handle.pragma('query_only = ON');
    j.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 60, offlineAt: undefined });
    await expect(j.committed()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    db.handle.pragma('query_only = OFF');
    j.addQos2('c', 1);
    await j.committed();
    expect([count('sessions'), count('qos2_in')]).toEqual([1, 1]);
  });

  it('refuses a session record the table cannot hold at once, and later commits are unaffected', async () => {
    const { journal: j, count } = openJournal();
    for (const bad of [Number.NaN, -1, 2 ** 32, [60, 60] as unknown as number]) {
      expect(() => j.saveSession({ clientId: 'garbled', protocolVersion: 5, expiryInterval: bad, offlineAt: undefined })).toThrow(/not stored/);
    }
    j.saveSession({ clientId: 'fine', protocolVersion: 5, expiryInterval: 60, offlineAt: undefined });
    await j.committed();
    expect(count('sessions')).toBe(1);
  });

  it('resolves committed() with nothing pending, and rejects changes once closed', async () => {
    const a = openJournal();
    await a.journal.committed();
    await a.close();
    a.journal.saveSession({ clientId: 'late', protocolVersion: 4, expiryInterval: 1, offlineAt: undefined });
    await expect(a.journal.committed()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('hands out delivery ids above every id in the file after a reopen', async () => {
    const a = openJournal();
    a.journal.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 60, offlineAt: undefined });
    for (let i = 0; i < 5; i++) a.journal.addDelivery('c', delivery(a.journal, msg('t', String(i))));
    await a.journal.committed();
    await a.close();
    expect(openJournal().journal.nextDeliveryId()).toBe(6);
  });
});

describe('restore', () => {
  async function seed(fn: (j: SqliteStateJournal) => void): Promise<void> {
    const a = openJournal();
    fn(a.journal);
    await a.journal.committed();
    await a.close();
  }

  it('deletes sessions whose expiry passed since they went offline, and counts a session online at a crash from the restart', async () => {
    const t0 = clock.now();
    await seed((j) => {
      j.saveSession({ clientId: 'gone', protocolVersion: 4, expiryInterval: 10, offlineAt: t0 });
      j.saveSubscription('gone', { filter: 'x', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined });
      j.addDelivery('gone', delivery(j, msg('x', 'lost')));
      j.saveSession({ clientId: 'left', protocolVersion: 4, expiryInterval: 100, offlineAt: t0 });
      j.saveSession({ clientId: 'online', protocolVersion: 5, expiryInterval: 10, offlineAt: undefined });
    });
    clock.advance(20_000);
    const b = openJournal();
    const r = b.journal.restore(clock.now(), limits);
    expect(r.expiredSessions).toBe(1);
    expect(r.sessions.map((s) => [s.clientId, s.offlineAt]).sort()).toEqual([
      ['left', t0],
      ['online', clock.now()],
    ]);
    expect([b.count('sessions'), b.count('subscriptions'), b.count('deliveries')]).toEqual([2, 0, 0]);
  });

  it('lowers a stored expiry to the current maximum', async () => {
    await seed((j) => j.saveSession({ clientId: 'long', protocolVersion: 5, expiryInterval: 0xffffffff, offlineAt: clock.now() }));
    clock.advance(3_000);
    const r = openJournal().journal.restore(clock.now(), { ...limits, maxSessionExpiry: 2 });
    expect(r.sessions).toEqual([]);
    expect(r.expiredSessions).toBe(1);
  });

  it('drops expired messages and queued messages beyond the caps, oldest kept, inflight ones always kept', async () => {
    const now = clock.now();
    await seed((j) => {
      j.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 600, offlineAt: now });
      j.addDelivery('c', delivery(j, msg('t', 'inflight'), { packetId: 1, state: 'wait-ack' }));
      // Delivery started before they expired: owed whatever their age [MQTT-4.4.0-1], and a
      // QoS 2 packet id the client may hold must not be freed [MQTT-3.3.2-5 covers queued ones only].
      j.addDelivery('c', delivery(j, msg('t', 'inflight-expired', { expiresAt: now + 1000 }), { packetId: 2, state: 'wait-ack' }));
      j.addDelivery('c', delivery(j, msg('t', 'received-expired', { expiresAt: now + 1000 }), { packetId: 3, state: 'wait-rec' }));
      j.addDelivery('c', delivery(j, msg('t', 'expired', { expiresAt: now + 1000 })));
      for (let i = 0; i < 6; i++) j.addDelivery('c', delivery(j, msg('t', `q${i}`)));
      j.retain(msg('r/old', 'expired', { expiresAt: now + 1000 }));
      j.retain(msg('r/new', 'live'));
    });
    clock.advance(2000);
    const b = openJournal();
    const r = b.journal.restore(clock.now(), { ...limits, maxQueuedMessages: 3 });
    expect(r.sessions[0]!.deliveries.map((d) => d.msg.payload.toString())).toEqual(['inflight', 'inflight-expired', 'received-expired', 'q0', 'q1', 'q2']);
    expect([r.expiredMessages, r.overCap]).toEqual([2, 3]);
    expect(r.retained.map((m) => m.topic)).toEqual(['r/new']);
    expect([b.count('deliveries'), b.count('retained')]).toEqual([6, 1]);
  });

  it('empties the tables of a kind that is switched off', async () => {
    await seed((j) => {
      j.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 600, offlineAt: clock.now() });
      j.retain(msg('r', 'x'));
    });
    const b = openJournal({ sessions: false, retained: false });
    const r = b.journal.restore(clock.now(), limits);
    expect([r.sessions.length, r.retained.length, b.count('sessions'), b.count('retained')]).toEqual([0, 0, 0, 0]);
  });

  it('deletes the rows of a session with deleteSession in one go', async () => {
    const a = openJournal();
    const j = a.journal;
    j.saveSession({ clientId: 'c', protocolVersion: 4, expiryInterval: 600, offlineAt: undefined });
    j.saveSubscription('c', { filter: 'x', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined });
    j.addDelivery('c', delivery(j, msg('x', 'm')));
    j.addQos2('c', 3);
    await j.committed();
    j.deleteSession('c');
    await j.committed();
    expect(['sessions', 'subscriptions', 'deliveries', 'qos2_in'].map((t) => a.count(t))).toEqual([0, 0, 0, 0]);
  });
});
