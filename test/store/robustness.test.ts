/**
 * The store against what a Raspberry Pi in the field does to it: files from older and
 * newer versions, corrupt files, a full disk, and the process killed with SIGKILL.
 * Fixtures are built by test/fixtures/store/make-fixtures.ts and copied before use.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';
import { DiskReserve } from '../../src/store/reserve.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg, payloads } from './outbox-helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, '../fixtures/store');

/** A pino logger whose lines land in an array. */
function captureLog() {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, errors: () => lines.filter((l) => l.level === 50) };
}

let dir: string;
const open: StoreDatabase[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-robust-'));
});
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function openIn(fixture: string | undefined, log = captureLog().log, clock = new FakeClock()): StoreDatabase {
  if (fixture) copyFileSync(path.join(fixtures, fixture), path.join(dir, 'outpost.db'));
  const db = openDatabase({ dir, synchronous: 'full', log, clock });
  open.push(db);
  return db;
}

describe('schema versions', () => {
  it('migrates a file from before migration 1 forward and keeps what was in it', () => {
    const { log, lines } = captureLog();
    const db = openIn('v0-unrelated.db', log);
    expect(db.handle.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.handle.prepare('SELECT text FROM notes').pluck().all()).toEqual(['kept across the upgrade']);
    expect(db.storeId).toMatch(/^[0-9a-f]{16}$/);
    expect(lines.filter((l) => l.msg === 'database schema migrated').map((l) => l.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('opens a schema 1 backlog with its message ids and goes on after its highest seq and source numbers', async () => {
    const clock = new FakeClock();
    const db = openIn('v1-backlog.db', undefined, clock);
    const outbox = new SqliteOutbox({ db, clock, log: pino({ level: 'silent' }), commitWindowMs: 0 });
    expect(outbox.stats('cloud')).toMatchObject({ rows: 3, bytes: 3 * 2 + 14 + 14 + 12, oldestCreatedAt: 1_700_000_000_000 });
    expect(outbox.read('cloud', 0, 10).map((e) => [e.msgId, e.payload.toString(), e.sourceSeq])).toEqual([
      ['f1f1f1f1f1f1f1f1-1', 'b1', 1],
      ['f1f1f1f1f1f1f1f1-2', 'b2', 2],
      ['f1f1f1f1f1f1f1f1-3', 'd1', 1],
    ]);
    await outbox.append('cloud', msg('sensors/boiler', 'b4'));
    const last = outbox.read('cloud', 3, 10)[0]!;
    expect([last.seq, last.sourceSeq]).toEqual([5, 4]); // seq 4 (b3) was acked and deleted before
    await outbox.close();
  });

  it('refuses a file written by a newer outpost with a sentence naming it, and leaves it alone', () => {
    copyFileSync(path.join(fixtures, 'future.db'), path.join(dir, 'outpost.db'));
    let err: unknown;
    try {
      openIn(undefined);
    } catch (e) {
      err = e;
    }
    expect(isOutpostError(err, 'STORE_INCOMPATIBLE')).toBe(true);
    expect((err as Error).message).toContain(path.join(dir, 'outpost.db'));
    expect((err as Error).message).toMatch(/schema version 999 .* newer outpost/);
    expect(readFileSync(path.join(dir, 'outpost.db'))).toEqual(readFileSync(path.join(fixtures, 'future.db')));
  });
});

describe('corrupt files', () => {
  for (const fixture of ['corrupt-header.db', 'truncated.db']) {
    it(`moves ${fixture} aside with its -wal and -shm, logs both paths, and starts an empty store`, async () => {
      writeFileSync(path.join(dir, 'outpost.db-wal'), 'wal leftovers');
      writeFileSync(path.join(dir, 'outpost.db-shm'), 'shm leftovers');
      const { log, errors } = captureLog();
      const clock = new FakeClock(Date.parse('2024-05-01T12:00:00.000Z'));
      const db = openIn(fixture, log, clock);
      const aside = path.join(dir, 'outpost.db.corrupt-2024-05-01T12:00:00.000Z');
      expect(db.movedAside).toBe(aside);
      expect(readFileSync(aside)).toEqual(readFileSync(path.join(fixtures, fixture)));
      expect(readFileSync(`${aside}-wal`, 'utf8')).toBe('wal leftovers');
      expect(existsSync(`${aside}-shm`)).toBe(true); // rewritten by SQLite: it is only an index of the WAL
      expect(errors()).toHaveLength(1);
      expect(errors()[0]).toMatchObject({ file: path.join(dir, 'outpost.db'), movedTo: aside });
      const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
      await outbox.append('cloud', msg('t', 'fresh'));
      expect(payloads(outbox, 'cloud')).toEqual(['fresh']);
      await outbox.close();
    });
  }

  it('does not move aside a file it merely cannot open, and says what to check', () => {
    mkdirSync(path.join(dir, 'outpost.db')); // a directory where the file should be
    expect(() => openIn(undefined)).toThrow(/outpost\.db cannot be opened .*store\.dir/);
    expect(readdirSync(dir)).toEqual(['outpost.db']);
  });
});

describe('disk full', () => {
  it('rejects the whole batch with STORE_FULL, counts it, logs once, and recovers when space frees', async () => {
    const { log, errors } = captureLog();
    const clock = new FakeClock();
    const db = openIn(undefined, log, clock);
    const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
    await outbox.append('cloud', msg('t', 'before'));
    db.handle.exec('VACUUM'); // no free pages left over from the migrations
    // max_page_count caps the file at its current size: the next new page is SQLITE_FULL,
    // exactly what SQLite reports for ENOSPC (sqlite.org/pragma.html#pragma_max_page_count).
    db.handle.pragma(`max_page_count = ${db.handle.pragma('page_count', { simple: true }) as number}`);
    const big = 'x'.repeat(5000); // more than a page: needs new pages however much room is free
    outbox.ack('cloud', [outbox.read('cloud', 0, 1)[0]!.seq]);
    const first = await Promise.allSettled(Array.from({ length: 20 }, () => outbox.append('cloud', msg('t', big))));
    const second = await Promise.allSettled([outbox.append('cloud', msg('t', big))]);
    for (const r of [...first, ...second]) {
      expect(r.status).toBe('rejected');
      expect(isOutpostError((r as PromiseRejectedResult).reason, 'STORE_FULL')).toBe(true);
    }
    expect((first[0] as PromiseRejectedResult).reason.message).toMatch(/^disk full: .*outpost\.db could not commit 20 message/);
    // After the first failure the ack of "before" committed alone (deletes need no new pages),
    // while the appends kept failing.
    expect(outbox.stats('cloud')).toMatchObject({ rows: 0, drops: { 'store-error': 21 } });
    expect(errors()).toHaveLength(1); // rate-limited
    expect(errors()[0]!.msg).toMatch(/^disk full: /);

    db.handle.pragma('max_page_count = 1000000');
    await outbox.append('cloud', msg('t', 'after'));
    expect(payloads(outbox, 'cloud')).toEqual(['after']);
    expect(outbox.stats('cloud')).toMatchObject({ rows: 1, bytes: 6 });
    await outbox.close();
  });
});

/**
 * A 4 MiB tmpfs (needs root, as test/system/disk-full.test.ts) with the database and a 1 MiB
 * reserve on it, unmounted after `fn`; `reserveClock` is the reserve's clock.
 */
async function onSmallDisk(
  fn: (disk: { mnt: string; db: StoreDatabase; reserve: DiskReserve; silent: pino.Logger }) => Promise<void>,
  reserveClock: () => number = () => 0,
): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a 4 MiB tmpfs and must run as root');
  const mnt = path.join(dir, 'small');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  const silent = pino({ level: 'silent' });
  let db: StoreDatabase | undefined;
  try {
    db = openDatabase({ dir: mnt, synchronous: 'full', log: silent, clock: new FakeClock() });
    const reserve = new DiskReserve(path.join(mnt, 'outpost.reserve'), 1024 * 1024, silent, reserveClock);
    expect(reserve.ensure()).toBe(true);
    await fn({ mnt, db, reserve, silent });
  } finally {
    db?.close();
    execFileSync('umount', [mnt]);
  }
}

describe('a full disk with a small reserve', () => {
  // A real tmpfs (needs root, as test/system/disk-full.test.ts): SQLite's own checkpoint at
  // 16 MiB of WAL never ran on a 4 MiB disk, so the whole backlog sat in the WAL and the
  // checkpoint after releasing a 1 MiB reserve needed the database file to grow by the
  // whole WAL. It failed, every delete failed with it, and the outbox never drained.
  it('drains the backlog that filled the disk once the reserve is released, takes new messages after, and gives the space back for the reserve', async () => {
    let now = 0;
    await onSmallDisk(async ({ db, reserve, silent }) => {
      const outbox = new SqliteOutbox({ db, reserve, clock: new FakeClock(), log: silent, commitWindowMs: 0, retryMs: 10 });
      let n = 0;
      let full = false;
      while (!full && n < 100_000) {
        const batch = Array.from({ length: 100 }, () => outbox.append('cloud', msg('sensors/x', `${n++}:${'x'.repeat(180)}`)));
        full = (await Promise.allSettled(batch)).some((r) => r.status === 'rejected');
      }
      expect(full).toBe(true);
      const queued = outbox.stats('cloud').rows;
      expect(queued).toBeGreaterThan(5000);
      // The uplink is back: the bridge acks the oldest rows, one window of 100 at a time.
      const deadline = Date.now() + 20_000;
      while (outbox.stats('cloud').rows > 0 && Date.now() < deadline) {
        const rows = outbox.read('cloud', 0, 100);
        await Promise.race([outbox.ack('cloud', rows.map((r) => r.seq)), new Promise((r) => setTimeout(r, 2000))]);
      }
      expect(outbox.stats('cloud').rows).toBe(0);
      await outbox.append('cloud', msg('sensors/x', 'after the drain'));
      expect(payloads(outbox, 'cloud')).toEqual(['after the drain']);
      expect(reserve.isHeld).toBe(false);
      // Traffic goes on with the uplink up: the pages the drain freed go back to the disk,
      // and the reserve is written again for the next time.
      for (let i = 0; i < 200 && !reserve.isHeld; i++) {
        now += 11_000;
        const rows = outbox.read('cloud', 0, 100);
        await Promise.all([outbox.ack('cloud', rows.map((r) => r.seq)), ...Array.from({ length: 20 }, () => outbox.append('cloud', msg('sensors/x', 'y'.repeat(180))))]);
      }
      expect(reserve.isHeld).toBe(true);
      await outbox.close();
    }, () => now);
  }, 60_000);
});

describe('a full disk that publishers keep filling while it drains', () => {
  // Once the reserve was given back, the deletes of the drain freed space and new messages
  // took it again, until the disk was full with no reserve left: the checkpoint the deletes
  // needed did not fit any more and the outbox never drained (an 8 MiB tmpfs, 28,779 rows).
  it("keeps the reserve's room for the drain while the reserve is released, so the backlog still drains", async () => {
    await onSmallDisk(async ({ db, reserve, silent }) => {
      const outbox = new SqliteOutbox({ db, reserve, clock: new FakeClock(), log: silent, commitWindowMs: 0, retryMs: 10 });
      let n = 0;
      const more = async (count: number): Promise<boolean> => {
        const batch = Array.from({ length: count }, () => outbox.append('cloud', msg('sensors/x', `${n++}:${'x'.repeat(180)}`)));
        return (await Promise.allSettled(batch)).some((r) => r.status === 'rejected');
      };
      while (!(await more(100)) && n < 100_000);
      // The uplink is back and the publishers go on: each window the bridge acks comes with new messages.
      const ackWindow = async (): Promise<void> => {
        const rows = outbox.read('cloud', 0, 100);
        await Promise.race([outbox.ack('cloud', rows.map((r) => r.seq)), new Promise((r) => setTimeout(r, 500))]);
      };
      for (let round = 0; round < 60; round++) await Promise.all([ackWindow(), more(200)]);
      // They slow down, and keep trying while the backlog drains.
      for (let round = 0; round < 150 && outbox.stats('cloud').rows > 0; round++) await Promise.all([ackWindow(), more(10)]);
      const deadline = Date.now() + 20_000;
      while (outbox.stats('cloud').rows > 0 && Date.now() < deadline) await ackWindow();
      expect(outbox.stats('cloud').rows).toBe(0);
      // The pages the backlog freed inside the database file count as room: new messages
      // are taken again after the drain, before those pages went back to the disk.
      await outbox.append('cloud', msg('sensors/x', 'after the drain'));
      expect(payloads(outbox, 'cloud')).toEqual(['after the drain']);
      await outbox.close();
    });
  }, 60_000);
});

describe('a full disk whose backlog has drained', () => {
  it('counts the pages the drain freed inside the database file as room for new messages while the reserve is released', async () => {
    await onSmallDisk(async ({ mnt, db, reserve, silent }) => {
      const outbox = new SqliteOutbox({ db, reserve, clock: new FakeClock(), log: silent, commitWindowMs: 0 });
      await Promise.all(Array.from({ length: 6000 }, (_, i) => outbox.append('cloud', msg('sensors/x', `${i}:${'x'.repeat(180)}`))));
      await outbox.ack('cloud', outbox.read('cloud', 0, 10_000).map((r) => r.seq));
      expect(outbox.stats('cloud').rows).toBe(0);
      // The drain is over but its pages are still in the file; the reserve is given back and
      // the disk has less than the reserve's size free.
      reserve.release();
      db.handle.pragma('wal_checkpoint(TRUNCATE)');
      const { bavail, bsize } = statfsSync(mnt);
      writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, bavail * bsize - 512 * 1024)));
      await outbox.append('cloud', msg('sensors/x', 'after the drain'));
      expect(payloads(outbox, 'cloud')).toEqual(['after the drain']);
      await outbox.close();
    });
  }, 60_000);
});

describe('kill -9', () => {
  it('keeps every append whose promise had resolved when the process was killed', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'kill-writer.ts'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const printed: number[] = [];
    let partial = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'close', not 'exit': it comes after the last stdout data.
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.on('exit', () => reject(new Error(`writer exited early: ${stderr}`)));
      child.stdout.on('data', (d: Buffer) => {
        const text = partial + d.toString();
        const lines = text.split('\n');
        partial = lines.pop()!;
        for (const l of lines) printed.push(Number(l));
        if (printed.length >= 5000) resolve();
      });
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Each "<n>\n" is one write below PIPE_BUF, so it is atomic: no line is ever cut in half.
    expect(partial).toBe('');

    const db = openIn(undefined);
    const stored = new Set(db.handle.prepare('SELECT payload FROM outbox').pluck().all().map((p) => Number((p as Buffer).toString())));
    const missing = printed.filter((n) => !stored.has(n));
    expect(missing).toEqual([]);
    expect(stored.size).toBeGreaterThanOrEqual(printed.length);
    expect(existsSync(path.join(dir, 'outpost.db'))).toBe(true);
  });
});
