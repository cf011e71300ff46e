/**
 * The WAL against an SD card that loses or garbles part of a file. Between checkpoints the WAL
 * is the only copy of what the outbox buffered (database.ts), so what SQLite silently drops
 * of it at open is acknowledged messages lost. The files are a copy taken while the store
 * was open, as a power cut or kill -9 leaves them.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg } from './outbox-helpers.js';

function captureLog() {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, at: (level: number) => lines.filter((l) => l.level === level) };
}

const FRAME = 24 + 1024;
let dir: string;
const open: StoreDatabase[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-wal-damage-'));
});
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A store with `n` messages committed one per commit, copied to `<dir>/copy` while still open. */
async function crashCopy(n: number): Promise<string> {
  const live = path.join(dir, 'live');
  const { log } = captureLog();
  const clock = new FakeClock();
  const db = openDatabase({ dir: live, synchronous: 'full', log, clock });
  const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
  for (let i = 0; i < n; i++) await outbox.append('cloud', msg('sensors/t', `m${i}`));
  const copy = path.join(dir, 'copy');
  mkdirSync(copy);
  for (const f of ['outpost.db', 'outpost.db-wal']) copyFileSync(path.join(live, f), path.join(copy, f));
  await outbox.close();
  db.close();
  return copy;
}

function reopen(copy: string, log: pino.Logger): number {
  const db = openDatabase({ dir: copy, synchronous: 'full', log, clock: new FakeClock(Date.parse('2024-05-01T12:00:00.000Z')) });
  open.push(db);
  return db.handle.prepare('SELECT count(*) FROM outbox').pluck().get() as number;
}

function scribble(file: string, at: number, bytes: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(bytes, 0xa5), 0, bytes, at);
  closeSync(fd);
}

describe('a database file cut to 0 bytes', () => {
  it('keeps the messages its WAL holds (SQLite would delete the WAL) and says the first page came back from the WAL', async () => {
    const copy = await crashCopy(50);
    truncateSync(path.join(copy, 'outpost.db'), 0);
    const { log, at } = captureLog();
    expect(reopen(copy, log)).toBe(50);
    expect(at(40)).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^database file was empty \(0 bytes\) next to its WAL/) })]);
    expect(at(50)).toEqual([]);
  });

  it('with no WAL is an error saying what it held is lost, not only "database created"', async () => {
    const copy = await crashCopy(5);
    rmSync(path.join(copy, 'outpost.db-wal'));
    truncateSync(path.join(copy, 'outpost.db'), 0);
    const { log, at } = captureLog();
    expect(reopen(copy, log)).toBe(0);
    expect(at(50)).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^database file was empty .*whatever it held is lost/) })]);
  });

  it('keeps a copy of a WAL that cannot be read without the lost file, before SQLite deletes it', async () => {
    const live = path.join(dir, 'live');
    const { log: quiet } = captureLog();
    const clock = new FakeClock();
    const db = openDatabase({ dir: live, synchronous: 'full', log: quiet, clock });
    open.push(db);
    const outbox = new SqliteOutbox({ db, clock, log: quiet, commitWindowMs: 0 });
    for (let i = 0; i < 20; i++) await outbox.append('cloud', msg('sensors/t', `m${i}`));
    db.handle.pragma('wal_checkpoint(TRUNCATE)');
    await outbox.append('cloud', msg('sensors/t', 'after')); // a commit that leaves page 1 as it is
    const copy = path.join(dir, 'copy');
    mkdirSync(copy);
    copyFileSync(path.join(live, 'outpost.db-wal'), path.join(copy, 'outpost.db-wal'));
    writeFileSync(path.join(copy, 'outpost.db'), '');
    const wal = readFileSync(path.join(copy, 'outpost.db-wal'));
    const { log, at } = captureLog();
    expect(reopen(copy, log)).toBe(0);
    const walCopy = path.join(copy, 'outpost.db-wal.damaged-2024-05-01T12:00:00.000Z');
    expect(at(50)).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^database file was empty/), walCopy })]);
    expect(readFileSync(walCopy)).toEqual(wal);
    await outbox.close();
  });
});

describe('a WAL damaged in the middle', () => {
  it('is reported with the commits lost, and a copy of it kept before SQLite overwrites it', async () => {
    const copy = await crashCopy(60);
    const wal = path.join(copy, 'outpost.db-wal');
    const frames = (statSync(wal).size - 32) / FRAME;
    scribble(wal, 32 + Math.floor(frames / 2) * FRAME + 30, 200);
    const damaged = readFileSync(wal);
    const { log, at } = captureLog();
    const rows = reopen(copy, log);
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThan(60);
    const errors = at(50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ msg: expect.stringMatching(/^WAL file damaged/), copy: `${wal}.damaged-2024-05-01T12:00:00.000Z` });
    expect(errors[0]!.unreadCommits).toBeGreaterThanOrEqual(60 - rows - 1);
    expect(readFileSync(errors[0]!.copy as string)).toEqual(damaged);
  });

  it('is not reported when only the last commit is torn, as a power cut during it leaves it', async () => {
    const copy = await crashCopy(20);
    const wal = path.join(copy, 'outpost.db-wal');
    scribble(wal, statSync(wal).size - 100, 100);
    const { log, at } = captureLog();
    expect(reopen(copy, log)).toBe(19);
    expect(at(50)).toEqual([]);
    expect(existsSync(`${wal}.damaged-2024-05-01T12:00:00.000Z`)).toBe(false);
  });
});

describe('a store on a file system remounted read-only', () => {
  it('refuses to start with a sentence naming EROFS, instead of failing at its first write with a stack trace', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs, which needs root (as .ci/run runs the suite)');
    const copy = await crashCopy(3);
    const mnt = path.join(dir, 'ro');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    try {
      mkdirSync(path.join(mnt, 'state'));
      for (const f of ['outpost.db', 'outpost.db-wal']) copyFileSync(path.join(copy, f), path.join(mnt, 'state', f));
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const { log } = captureLog();
      expect(() => openDatabase({ dir: path.join(mnt, 'state'), synchronous: 'full', log })).toThrow(/outpost\.db cannot be written \(EROFS: read-only/);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('refuses to start with a sentence when ext4 went read-only after an I/O error, which access() does not see', async () => {
    const copy = await crashCopy(3);
    const img = path.join(dir, 'ext4.img');
    const mnt = path.join(dir, 'ext4');
    mkdirSync(mnt);
    execFileSync('truncate', ['-s', '16M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    execFileSync('mount', ['-o', 'loop,errors=remount-ro', img, mnt]);
    try {
      mkdirSync(path.join(mnt, 'state'));
      for (const f of ['outpost.db', 'outpost.db-wal']) copyFileSync(path.join(copy, f), path.join(mnt, 'state', f));
      const loop = execFileSync('findmnt', ['-n', '-o', 'SOURCE', mnt], { encoding: 'utf8' }).trim();
      writeFileSync(`/sys/fs/ext4/${path.basename(loop)}/trigger_fs_error`, '1');
      const { log } = captureLog();
      expect(() => openDatabase({ dir: path.join(mnt, 'state'), synchronous: 'full', log })).toThrow(/outpost\.db cannot be opened \(SQLITE_\w+.*the disk of store\.dir is read-only/);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('a store.dir deleted while the store is open', () => {
  it('refuses the next messages with a sentence saying to restart, instead of acknowledging them into a file no start finds again', async () => {
    const live = path.join(dir, 'live');
    const { log, at } = captureLog();
    const clock = new FakeClock();
    const db = openDatabase({ dir: live, synchronous: 'full', log, clock });
    open.push(db);
    const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0, retryMs: 60_000 });
    await outbox.append('cloud', msg('sensors/t', 'before'));
    expect(db.moved()).toBe(false);
    rmSync(live, { recursive: true });
    expect(db.moved()).toBe(true);
    await expect(outbox.append('cloud', msg('sensors/t', 'after'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(at(50)).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^database file gone: .*restart outpost/) })]);
    await outbox.close();
  });
});
