/**
 * What only the SQLite file outbox promises beyond the contract: a commit is visible to
 * another connection exactly when the append resolves, and everything (seqs, source
 * numbers, counters, store id) carries over a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { door, msg, payloads } from './outbox-helpers.js';

const log = pino({ level: 'silent' });
let dir: string;
let clock: FakeClock;
const opened: Array<{ db: StoreDatabase; outbox?: SqliteOutbox }> = [];

function start(commitWindowMs = 0): { db: StoreDatabase; outbox: SqliteOutbox } {
  const db = openDatabase({ dir, synchronous: 'full', log, clock });
  const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs });
  opened.push({ db, outbox });
  return { db, outbox };
}

async function stop(s: { db: StoreDatabase; outbox: SqliteOutbox }): Promise<void> {
  await s.outbox.close();
  s.db.close();
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-sqlite-outbox-'));
  clock = new FakeClock();
});
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.outbox?.close();
    o.db.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteOutbox on a file', () => {
  it('makes a row visible to a second connection exactly when its append resolves', async () => {
    const s = start(40);
    await s.outbox.append('cloud', msg('t', 'first')); // the next commit waits for the window
    const peer = openDatabase({ dir, synchronous: 'full', log, clock });
    opened.push({ db: peer });
    const count = () => peer.handle.prepare('SELECT count(*) FROM outbox').pluck().get();
    let seenAtResolve: unknown;
    const p = s.outbox.append('cloud', msg('t', 'x')).then(() => (seenAtResolve = count()));
    await new Promise((r) => setImmediate(r));
    expect(seenAtResolve).toBeUndefined(); // still inside the 40 ms window
    expect(count()).toBe(1);
    await p;
    expect(seenAtResolve).toBe(2);
  });

  it('carries seqs, per-source numbers, counters and the store id over a restart, even with the newest rows deleted', async () => {
    let s = start();
    await Promise.all([s.outbox.append('cloud', msg('t', 'a')), s.outbox.append('cloud', msg('t', 'b')), s.outbox.append('cloud', msg('t', 'd', { origin: door }))]);
    const rows = s.outbox.read('cloud', 0, 10);
    const storeId = s.db.storeId;
    s.outbox.ack('cloud', rows.slice(1).map((e) => e.seq)); // the newest two: only "a" stays
    await stop(s);

    s = start();
    expect(s.db.storeId).toBe(storeId);
    expect(s.outbox.stats('cloud')).toMatchObject({ rows: 1, bytes: 2, oldestCreatedAt: rows[0]!.createdAt });
    await Promise.all([s.outbox.append('cloud', msg('t', 'e')), s.outbox.append('cloud', msg('t', 'f', { origin: door }))]);
    const after = s.outbox.read('cloud', 0, 10);
    expect(after.map((e) => [e.payload.toString(), e.sourceSeq])).toEqual([
      ['a', 1],
      ['e', 3],
      ['f', 2],
    ]);
    expect(after[1]!.seq).toBeGreaterThan(rows[2]!.seq);
    expect(after[1]!.msgId).toBe(`${storeId}-${after[1]!.seq}`);
  });

  it('writes no source-table row for appends, and after a restart numbers each source on from its newest row', async () => {
    let s = start();
    await Promise.all([s.outbox.append('cloud', msg('t', 'a')), s.outbox.append('cloud', msg('t', 'b')), s.outbox.append('cloud', msg('t', 'd', { origin: door }))]);
    const sourceRows = (db: StoreDatabase): number => db.handle.prepare('SELECT count(*) AS n FROM source_seq').pluck().get() as number;
    expect(sourceRows(s.db)).toBe(0);
    await stop(s);

    s = start();
    await Promise.all([s.outbox.append('cloud', msg('t', 'c')), s.outbox.append('cloud', msg('t', 'e', { origin: door }))]);
    expect(s.outbox.read('cloud', 0, 10).map((e) => [e.payload.toString(), e.sourceSeq])).toEqual([
      ['a', 1],
      ['b', 2],
      ['d', 1],
      ['c', 3],
      ['e', 2],
    ]);
    // Acking the newest row of a source saves its number; an older one does not.
    const rows = s.outbox.read('cloud', 0, 10);
    s.outbox.ack('cloud', [rows[0]!.seq, rows[4]!.seq]); // "a" (not the newest of its source) and "e" (the newest of door)
    await s.outbox.flush();
    expect(s.db.handle.prepare('SELECT origin_id AS id, last_seq AS last FROM source_seq').all()).toEqual([{ id: door.id, last: 2 }]);
  });

  it('saves every cached source number before the cache of sources is emptied, so none is handed out twice', async () => {
    const s = start();
    const from = (id: string) => ({ origin: { kind: 'mqtt' as const, id } });
    // As many sources as the cache keeps, then one more in a later commit: that commit empties it.
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => s.outbox.append('cloud', msg('t', `m${i}`, from(`c${i}`)))));
    await s.outbox.append('cloud', msg('t', 'm10000', from('c10000')));
    // The rows stay (nothing delivered); the next numbers come from the source table now.
    await Promise.all([s.outbox.append('cloud', msg('t', 'again', from('c0'))), s.outbox.append('cloud', msg('t', 'again', from('c10000')))]);
    expect(s.outbox.read('cloud', 0, 20_000).filter((e) => e.payload.toString() === 'again').map((e) => e.sourceSeq)).toEqual([2, 2]);
  });

  it('commits what was pending when closed, so a restart finds it', async () => {
    const s = start(1000);
    const p = s.outbox.append('cloud', msg('t', 'pending'));
    await stop(s);
    await p;
    expect(payloads(start().outbox, 'cloud')).toEqual(['pending']);
  });
});
