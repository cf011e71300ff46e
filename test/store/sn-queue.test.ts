/**
 * Buffered messages of persistent MQTT-SN sessions in SQLite (src/store/sn-queue.ts): kept
 * as deliveries of the broker's session journal, so a publisher's PUBACK waits for them,
 * and left alone by the broker's own restore.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { JournalSnQueue } from '../../src/store/sn-queue.js';
import { SqliteSnSessions } from '../../src/store/sn-sessions.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { SqliteStateJournal } from '../../src/store/state-journal.js';
import { silentLog } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, type SnHarness } from '../helpers/mqttsn-gateway.js';

const YAML = 'retry_interval: 1s\nmax_retries: 2\nsession_expiry: 1h';
const origin = { kind: 'system', id: 'test' } as const;
const limits = { maxQueuedMessages: 1000, maxQueuedBytes: 1 << 20, maxSessionExpiry: 0xffffffff };
let dir: string;
const closers: Array<() => Promise<void> | void> = [];

interface Store {
  db: StoreDatabase;
  outbox: SqliteOutbox;
  journal: SqliteStateJournal;
  sessions: SqliteSnSessions;
  queue: JournalSnQueue;
  close(): Promise<void>;
}

function open(): Store {
  const clock = new FakeClock();
  const db = openDatabase({ dir, synchronous: 'full', log: silentLog, clock });
  // A commit delay longer than the test: only a prompt commit (somebody waits) lands in time.
  const outbox = new SqliteOutbox({ db, clock, log: silentLog, commitWindowMs: 0, commitDelayMs: 5_000 });
  const journal = new SqliteStateJournal({ db, persistSessions: true, persistRetained: true });
  journal.attach(outbox.join(journal));
  const sessions = new SqliteSnSessions(db);
  sessions.attach(outbox.join(sessions));
  const s: Store = {
    db,
    outbox,
    journal,
    sessions,
    queue: new JournalSnQueue(journal),
    async close() {
      await outbox.close();
      journal.close();
      sessions.close();
      if (db.handle.open) db.close();
    },
  };
  closers.push(() => s.close());
  return s;
}

const rows = (db: StoreDatabase) =>
  db.handle.prepare('SELECT client_id AS key, topic, CAST(payload AS TEXT) AS payload FROM deliveries ORDER BY id').all() as Array<{ key: string; topic: string; payload: string }>;

async function sleepingSensor(store: Store, broker: Broker): Promise<SnHarness> {
  broker.attachJournal(store.journal);
  const h = await startSnGateway(YAML, { store: store.sessions, queue: store.queue, broker });
  closers.push(() => h.close());
  const c = await h.client();
  expect(await c.connect('well-5', { clean: false, duration: 30 })).toBe(0);
  expect((await c.subscribe('cmd/well-5', 1)).returnCode).toBe(0);
  c.send({ type: MsgType.DISCONNECT, duration: 600 });
  await c.next(MsgType.DISCONNECT);
  return h;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-sn-queue-'));
});
afterEach(async () => {
  for (const f of closers.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('buffered messages of persistent MQTT-SN sessions in SQLite', () => {
  it('acknowledges a publish buffered for a sleeping sensor only once its row is committed', async () => {
    const store = open();
    const broker = new Broker({}, { log: silentLog });
    await sleepingSensor(store, broker);
    const acked = broker.publish({ topic: 'cmd/well-5', payload: Buffer.from('pump on'), qos: 1, retain: false, origin });
    expect(acked).toBeDefined();
    expect(rows(store.db)).toEqual([]);
    await acked;
    expect(rows(store.db)).toEqual([{ key: '\u0000sn:well-5', topic: 'cmd/well-5', payload: 'pump on' }]);
  });

  it('keeps the rows through the broker restore of the next start, and reads them back for the session in order', async () => {
    const first = open();
    const broker = new Broker({}, { log: silentLog });
    const h = await sleepingSensor(first, broker);
    await broker.publish({ topic: 'cmd/well-5', payload: Buffer.from('a'), qos: 1, retain: false, origin });
    await broker.publish({ topic: 'cmd/well-5', payload: Buffer.from('b'), qos: 2, retain: false, origin });
    await h.gw.stop();
    await first.close();

    const second = open();
    // The broker's restore drops deliveries of clients without an MQTT session: not these.
    second.journal.restore(Date.now(), limits);
    expect(rows(second.db).map((r) => r.payload)).toEqual(['a', 'b']);
    expect([...second.sessions.load().keys()]).toEqual(['well-5']);
    expect(second.queue.load('well-5', 10).map((i) => `${i.msg.payload.toString()} q${i.qos}`)).toEqual(['a q1', 'b q1']);

    // A sensor whose session is no longer stored: its messages go at the next commit.
    second.queue.prune(new Set());
    await second.journal.committed();
    expect(rows(second.db)).toEqual([]);
  });
});
