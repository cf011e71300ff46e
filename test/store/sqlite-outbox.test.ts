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
import { decodeSourceLog, encodeSourceLog } from '../../src/store/source-log.js';
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
    // Acking the newest row of a source saves its number (one log row for the commit); an older one does not.
    const rows = s.outbox.read('cloud', 0, 10);
    s.outbox.ack('cloud', [rows[0]!.seq, rows[4]!.seq]); // "a" (not the newest of its source) and "e" (the newest of door)
    await s.outbox.flush();
    expect(s.db.handle.prepare('SELECT entries FROM source_seq_log').pluck().all().map((v) => decodeSourceLog(v as Buffer))).toEqual([
      [{ bridge: 'cloud', originKind: 'mqtt', originId: door.id, last: 2 }],
    ]);
    expect(sourceRows(s.db)).toBe(0);
  });

  it('appends one log row per commit that saves source numbers, folds the log into the source table when it is long, and numbers on from either after a restart', async () => {
    const db = openDatabase({ dir, synchronous: 'full', log, clock });
    let outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0, sourceLogRows: 3 });
    const h = db.handle;
    const logRows = () => h.prepare('SELECT count(*) FROM source_seq_log').pluck().get() as number;
    const tableRows = () => h.prepare('SELECT origin_id AS id, last_seq AS last FROM source_seq ORDER BY origin_id').all();
    const from = (id: string) => ({ origin: { kind: 'mqtt' as const, id } });
    // Each round: two sources publish and are acked (their newest rows deleted) in one commit.
    const round = async (n: number) => {
      await Promise.all([outbox.append('cloud', msg('t', `x${n}`, from('x'))), outbox.append('cloud', msg('t', `y${n}`, from('y')))]);
      outbox.ack('cloud', outbox.read('cloud', 0, 10).map((e) => e.seq));
      await outbox.flush();
    };
    await round(1);
    await round(2);
    expect([logRows(), tableRows()]).toEqual([2, []]);
    await round(3); // the third log row folds the log
    expect([logRows(), tableRows()]).toEqual([0, [{ id: 'x', last: 3 }, { id: 'y', last: 3 }]]);
    await round(4);
    expect([logRows(), tableRows()]).toEqual([1, [{ id: 'x', last: 3 }, { id: 'y', last: 3 }]]);
    await outbox.close();
    // A restart reads both: 4 from the log beats 3 in the table.
    outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0, sourceLogRows: 3 });
    await outbox.append('cloud', msg('t', 'x5', from('x')));
    expect(outbox.read('cloud', 0, 10).map((e) => e.sourceSeq)).toEqual([5]);
    await outbox.close();
    db.close();
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

describe('the source-number log rows', () => {
  it('round-trip every entry, grouped by bridge and kind, and read rows written as JSON text by earlier versions', () => {
    const entries = Array.from({ length: 120 }, (_, i) => ({ bridge: i % 3 === 0 ? 'backup' : 'cloud', originKind: i % 2 === 0 ? 'mqttsn' : 'mqtt', originId: `sn-${i}"\\é`, last: 1_000_000 + i }));
    const key = (e: { bridge: string; originKind: string; originId: string }) => `${e.bridge}/${e.originKind}/${e.originId}`;
    const sorted = (xs: typeof entries) => [...xs].sort((a, b) => key(a).localeCompare(key(b)));
    expect(sorted(decodeSourceLog(encodeSourceLog(entries)))).toEqual(sorted(entries));
    expect(decodeSourceLog(JSON.stringify([['cloud', 'mqtt', 'door', 7]]))).toEqual([{ bridge: 'cloud', originKind: 'mqtt', originId: 'door', last: 7 }]);
  });

  it('keep the numbers of a commit of fifty sensors well inside a 1 KiB page, which their JSON text overflowed', () => {
    const entries = Array.from({ length: 50 }, (_, i) => ({ bridge: 'cloud', originKind: 'mqttsn', originId: `sn-${(i * 37) % 1000}`, last: 400_000 + i * 13 }));
    const text = JSON.stringify(entries.map((e) => [e.bridge, e.originKind, e.originId, e.last]));
    expect(text.length).toBeGreaterThan(1024);
    expect(encodeSourceLog(entries).length).toBeLessThan(512);
  });
});
