/**
 * The committed tail: the newest committed rows of a bridge, which the forwarder reads
 * without a query. Whatever it answers must be exactly what the database holds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewRow, StoredRow } from '../../src/store/backend.js';
import { CommittedTail } from '../../src/store/committed-tail.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import type { OutboxEntry } from '../../src/store/outbox.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg } from './outbox-helpers.js';

const row = (seq: number): NewRow => ({
  seq, topic: 't', payload: Buffer.from(String(seq)), qos: 1, retain: 0, props: null,
  createdAt: 0, expiresAt: null, originKind: 'mqtt', originId: 'a', sourceSeq: seq, bridge: 'cloud', bytes: 10,
});
const seqs = (rows: StoredRow[] | undefined): number[] | undefined => rows?.map((r) => r.seq);

describe('CommittedTail', () => {
  it('answers reads from the first row it saw on, and none from before it', () => {
    const t = new CommittedTail(100, 1 << 20);
    for (const s of [5, 6, 7]) t.added(row(s));
    expect(seqs(t.read(4, 10))).toEqual([5, 6, 7]);
    expect(seqs(t.read(6, 10))).toEqual([7]);
    expect(seqs(t.read(7, 10))).toEqual([]);
    expect(seqs(t.read(5, 1))).toEqual([6]);
    expect(t.read(3, 10)).toBeUndefined(); // seq 4 may be in the database
  });

  it('skips deleted rows, and lets deleted rows at its front go at once', () => {
    const t = new CommittedTail(100, 1 << 20);
    for (const s of [1, 2, 3, 4]) t.added(row(s));
    t.removed(3);
    expect(seqs(t.read(0, 10))).toEqual([1, 2, 4]);
    t.removed(1);
    t.removed(2);
    expect(t.size).toBe(1); // 1, 2 and 3 left the front
    expect(seqs(t.read(3, 10))).toEqual([4]);
    expect(t.read(1, 10)).toBeUndefined();
  });

  it('finds a held row by its seq until it is deleted or leaves the tail', () => {
    const t = new CommittedTail(3, 1 << 20);
    for (const s of [1, 2, 3]) t.added(row(s));
    expect(t.find(2)?.payload.toString()).toBe('2');
    t.removed(2);
    expect(t.find(2)).toBeUndefined();
    expect(t.find(3)?.seq).toBe(3);
    t.added(row(4)); // over the bound of 3 rows: seq 1 leaves
    expect(t.find(1)).toBeUndefined();
    expect(t.find(5)).toBeUndefined();
    expect(t.find(0)).toBeUndefined();
  });

  it('keeps at most its row and byte bounds, the newest rows', () => {
    const byRows = new CommittedTail(3, 1 << 20);
    for (let s = 1; s <= 10; s++) byRows.added(row(s));
    expect(byRows.size).toBe(3);
    expect(seqs(byRows.read(7, 10))).toEqual([8, 9, 10]);
    expect(byRows.read(6, 10)).toBeUndefined();
    const byBytes = new CommittedTail(100, 25);
    for (let s = 1; s <= 10; s++) byBytes.added(row(s));
    expect(byBytes.size).toBe(2);
    expect(seqs(byBytes.read(8, 10))).toEqual([9, 10]);
  });
});

describe('outbox reads served from the committed tail', () => {
  const log = pino({ level: 'silent' });
  const clock = new FakeClock();
  let dir: string;
  const dbs: StoreDatabase[] = [];
  const outboxes: SqliteOutbox[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-tail-'));
  });
  afterEach(async () => {
    for (const o of outboxes.splice(0)) await o.close();
    for (const d of dbs.splice(0)) d.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = (): SqliteOutbox => {
    const db = openDatabase({ dir, synchronous: 'normal', log, clock });
    const o = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
    dbs.push(db);
    outboxes.push(o);
    return o;
  };
  const view = (entries: OutboxEntry[]) => entries.map((e) => [e.seq, e.topic, e.payload.toString(), e.sourceSeq, e.msgId, e.properties]);

  it('gives exactly what the database holds through appends, acks, caps dropping the oldest, and two bridges', async () => {
    const writer = open();
    writer.configure('cloud', { maxRows: 40, maxBytes: Infinity, maxAgeMs: Infinity, whenFull: 'drop-oldest' });
    let n = 0;
    let next = 1;
    const rand = (k: number): number => (next = (next * 1103515245 + 12345) % 2 ** 31) % k;
    for (let round = 0; round < 60; round++) {
      const appends: Promise<void>[] = [];
      for (let i = rand(30); i > 0; i--) {
        const bridge = rand(3) === 0 ? 'backup' : 'cloud';
        const props = rand(4) === 0 ? { userProperties: { k: String(n) } } : {};
        appends.push(writer.append(bridge, msg(`t/${n % 7}`, `m${n++}`, { properties: props })));
      }
      await Promise.all(appends);
      // A new connection that never commits: its reads all come from the database.
      const reader = open();
      for (const bridge of ['cloud', 'backup']) {
        const all = reader.read(bridge, 0, 10_000);
        const acks = all.filter(() => rand(3) === 0).map((e) => e.seq);
        if (acks.length > 0) await writer.ack(bridge, acks);
        const now = reader.read(bridge, 0, 10_000);
        for (const e of [undefined, ...now.slice(0, 5), ...now.slice(-3)]) {
          const after = e?.seq ?? 0;
          expect(view(writer.read(bridge, after, 25))).toEqual(view(reader.read(bridge, after, 25)));
        }
      }
      await outboxes.pop()!.close();
      dbs.pop()!.close();
    }
    expect(n).toBeGreaterThan(500);
  });
});
