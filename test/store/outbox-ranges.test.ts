/**
 * The SQLite outbox's seq ranges (migration 3): each bridge's rows are a rowid range of
 * one table with no index beside it, seqs are never handed out twice, and a version 1
 * file with two bridges upgrades with both backlogs in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg, payloads } from './outbox-helpers.js';

const log = pino({ level: 'silent' });
const SPAN = 2 ** 40;
let dir: string;
const clock = new FakeClock();
const opened: Array<{ db: StoreDatabase; outbox?: SqliteOutbox }> = [];

function start(): { db: StoreDatabase; outbox: SqliteOutbox } {
  const db = openDatabase({ dir, synchronous: 'normal', log, clock });
  const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
  opened.push({ db, outbox });
  return { db, outbox };
}

async function stop(s: { db: StoreDatabase; outbox: SqliteOutbox }): Promise<void> {
  opened.splice(opened.indexOf(s), 1);
  await s.outbox.close();
  s.db.close();
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-ranges-'));
});
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.outbox?.close();
    o.db.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('outbox seq ranges', () => {
  it('gives each bridge its own range and reads each one as a rowid range of the table, with no index on it', async () => {
    const s = start();
    await Promise.all(['c1', 'b1', 'c2', 'b2', 'c3'].map((p) => s.outbox.append(p.startsWith('c') ? 'cloud' : 'backup', msg('t', p))));
    expect(payloads(s.outbox, 'cloud')).toEqual(['c1', 'c2', 'c3']);
    expect(payloads(s.outbox, 'backup')).toEqual(['b1', 'b2']);
    expect(s.outbox.read('cloud', 0, 10).map((e) => e.seq)).toEqual([1, 2, 3]); // the first bridge counts from 1
    expect(s.outbox.read('backup', 0, 10).map((e) => e.seq)).toEqual([SPAN + 1, SPAN + 2]);
    expect(s.outbox.newestSeq('backup')).toBe(SPAN + 2);
    const h = s.db.handle;
    expect(h.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'outbox'").all()).toEqual([]);
    const plan = h.prepare('EXPLAIN QUERY PLAN SELECT seq FROM outbox WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?').all(0, SPAN, 10) as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/SEARCH outbox USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
  });

  it('writes a bridge high-water mark only when a commit leaves its newest row deleted, and goes on above it after a restart', async () => {
    let s = start();
    const top = () => s.db.handle.prepare("SELECT last_seq FROM outbox_bridges WHERE name = 'cloud'").pluck().get() as number;
    await Promise.all(['1', '2', '3'].map((p) => s.outbox.append('cloud', msg('t', p))));
    expect(top()).toBe(0); // appends alone never write it
    const seqs = s.outbox.read('cloud', 0, 10).map((e) => e.seq);
    s.outbox.ack('cloud', seqs.slice(0, 2));
    await s.outbox.flush();
    expect(top()).toBe(0); // the newest row is still there
    s.outbox.ack('cloud', [seqs[2]!]);
    await s.outbox.flush();
    expect(top()).toBe(3);
    await stop(s);

    s = start();
    await s.outbox.append('cloud', msg('t', '4'));
    expect(s.outbox.read('cloud', 0, 10).map((e) => e.seq)).toEqual([4]);
  });

  it('hands the seqs of a rolled-back commit out again and still knows a bridge whose first commit failed', async () => {
    const s = start();
    await s.outbox.append('cloud', msg('t', 'first'));
    s.db.handle.pragma('query_only = ON'); // every write fails: the commit rolls back
    await expect(s.outbox.append('backup', msg('t', 'lost'))).rejects.toThrow();
    s.db.handle.pragma('query_only = OFF');
    await s.outbox.append('backup', msg('t', 'b1'));
    await s.outbox.append('cloud', msg('t', 'second'));
    expect(s.outbox.read('backup', 0, 10).map((e) => [e.seq, e.payload.toString()])).toEqual([[SPAN + 1, 'b1']]);
    expect(s.outbox.read('cloud', 0, 10).map((e) => e.seq)).toEqual([1, 2]);
    const rows = s.db.handle.prepare('SELECT name, no FROM outbox_bridges ORDER BY no').all();
    expect(rows).toEqual([{ name: 'cloud', no: 0 }, { name: 'backup', no: 1 }]);
  });

  it('upgrades a version 1 file with two bridges: the first keeps its message ids, the second moves above every old seq', async () => {
    const v1 = openDatabase({ dir, synchronous: 'normal', log, clock, migrations: MIGRATIONS.slice(0, 1) });
    const ins = v1.handle.prepare(
      "INSERT INTO outbox (bridge, topic, payload, qos, retain, props, created_at, expires_at, origin_kind, origin_id, source_seq, bytes) VALUES (?, 't', ?, 1, 0, NULL, 1, NULL, 'serial', 'boiler', ?, 3)",
    );
    ['cloud', 'backup', 'cloud', 'backup', 'cloud'].forEach((b, i) => ins.run(b, Buffer.from(`${b[0]}${i}`), i + 1));
    v1.handle.prepare('DELETE FROM outbox WHERE seq = 5').run(); // the old high-water mark stays 5
    const storeId = v1.storeId;
    v1.close();

    const s = start();
    expect(s.db.storeId).toBe(storeId);
    expect(s.outbox.read('cloud', 0, 10).map((e) => [e.msgId, e.payload.toString()])).toEqual([
      [`${storeId}-1`, 'c0'],
      [`${storeId}-3`, 'c2'],
    ]);
    expect(s.outbox.read('backup', 0, 10).map((e) => [e.seq, e.payload.toString()])).toEqual([
      [SPAN + 2, 'b1'],
      [SPAN + 4, 'b3'],
    ]);
    expect(s.outbox.stats('backup')).toMatchObject({ rows: 2, bytes: 6 });
    await Promise.all([s.outbox.append('cloud', msg('t', 'c-new')), s.outbox.append('backup', msg('t', 'b-new'))]);
    expect(s.outbox.read('cloud', 3, 10).map((e) => e.seq)).toEqual([6]); // above the old mark (5)
    expect(s.outbox.read('backup', SPAN + 4, 10).map((e) => e.seq)).toEqual([SPAN + 6]);
  });
});
