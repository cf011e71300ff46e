/**
 * The database's layout and the outbox's own checkpoints (database.ts PAGE_SIZE,
 * WAL_CHECKPOINT_PAGES; sqlite-outbox.ts afterCommit): messages buffered while the uplink
 * is down live in the WAL, and once they are acknowledged the file gives their pages back
 * before the checkpoint, so they are not written a second time into the database file.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, PAGE_SIZE, WAL_CHECKPOINT_PAGES, type StoreDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg } from './outbox-helpers.js';

const log = pino({ level: 'silent' });
let dir: string;
const dbs: StoreDatabase[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-wal-'));
});
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  rmSync(dir, { recursive: true, force: true });
});
const open = (): StoreDatabase => {
  const db = openDatabase({ dir, synchronous: 'normal', log });
  dbs.push(db);
  return db;
};
const pragma = (db: StoreDatabase, name: string): unknown => db.handle.pragma(name, { simple: true });

describe('database layout', () => {
  it('makes a new file with 1 KiB pages, incremental auto-vacuum and a 16 MiB automatic checkpoint', () => {
    const db = open();
    expect([pragma(db, 'page_size'), pragma(db, 'auto_vacuum'), pragma(db, 'wal_autocheckpoint')]).toEqual([1024, 2, WAL_CHECKPOINT_PAGES]);
    expect(PAGE_SIZE * WAL_CHECKPOINT_PAGES).toBe(16 * 1024 * 1024);
  });

  it('rebuilds a file an earlier outpost made with 4 KiB pages once, keeping its rows and WAL mode', () => {
    const old = new Database(path.join(dir, 'outpost.db'));
    old.pragma('journal_mode = WAL');
    old.exec("CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('a'), ('b')");
    expect(old.pragma('page_size', { simple: true })).toBe(4096);
    old.close();
    const db = open();
    expect([pragma(db, 'page_size'), pragma(db, 'auto_vacuum'), pragma(db, 'journal_mode')]).toEqual([1024, 2, 'wal']);
    expect(db.handle.prepare('SELECT v FROM kept ORDER BY v').pluck().all()).toEqual(['a', 'b']);
  });
});

describe('database layout of a large file', () => {
  it('leaves a file over the rebuild limit in its layout, working, and rebuilds it once it is small enough', () => {
    const old = new Database(path.join(dir, 'outpost.db'));
    old.pragma('journal_mode = WAL');
    old.exec("CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('a')");
    old.close();
    const big = openDatabase({ dir, synchronous: 'normal', log, rebuildMaxBytes: 1024 });
    expect([pragma(big, 'page_size'), pragma(big, 'journal_mode')]).toEqual([4096, 'wal']);
    big.handle.exec("INSERT INTO kept VALUES ('b')");
    big.close();
    const later = open();
    expect([pragma(later, 'page_size'), pragma(later, 'auto_vacuum')]).toEqual([1024, 2]);
    expect(later.handle.prepare('SELECT v FROM kept ORDER BY v').pluck().all()).toEqual(['a', 'b']);
  });
});

describe('the WAL as the log of buffered messages', () => {
  it('keeps buffered rows out of the database file and, once they are acknowledged, checkpoints only the pages still in use', async () => {
    const clock = new FakeClock();
    const db = open();
    const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0, walSettleBytes: 512 * 1024 });
    const payload = 'x'.repeat(40);
    // An outage: 40,000 messages (about 4 MiB of WAL) buffered in commits of 200.
    for (let c = 0; c < 200; c++) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => outbox.append('cloud', msg(`site/s${i}`, payload))));
    }
    const buffered = db.diskBytes();
    expect(outbox.stats('cloud').rows).toBe(40_000);
    expect(buffered.wal).toBeGreaterThan(3 * 1024 * 1024);
    // The rows (some 2.8 MB as stored) were not copied into the database file. It holds at
    // most the first thousand, checkpointed while the outbox still counted as nearly empty.
    expect(buffered.db).toBeLessThan(256 * 1024);
    // The uplink is back: every row acknowledged, 100 per commit.
    for (;;) {
      const batch = outbox.read('cloud', 0, 100);
      if (batch.length === 0) break;
      await outbox.ack('cloud', batch.map((e) => e.seq));
    }
    // A few more commits with the outbox empty: the WAL is checked every 8th commit.
    for (let i = 0; i < 8; i++) await outbox.append('cloud', msg('site/after', 'y')).then(() => outbox.ack('cloud', outbox.read('cloud', 0, 1).map((e) => e.seq)));
    await outbox.close();
    // The outage's rows had filled some 4,000 pages; at most those of the last thousand rows,
    // deleted after the checkpoint, are still free in the file (until the next one).
    expect(pragma(db, 'freelist_count')).toBeLessThan(200);
    expect(db.diskBytes().db).toBeLessThan(256 * 1024);
    // The checkpoint ran and emptied the WAL file: it holds the commits since, less than the
    // size that calls for the next one, not the outage's megabytes (after a checkpoint that
    // left the file at its size, the next would run at once, and again every 8 commits).
    expect(db.diskBytes().wal).toBeLessThan(512 * 1024);
    expect(db.handle.prepare('SELECT count(*) FROM outbox').pluck().get()).toBe(0);
  });
});
