/**
 * A step of the wall clock (NTP on a Raspberry Pi without a real-time clock) must not age
 * the outbox's backlog past max_age nor expire its messages: stamps taken before the step
 * move with it, in memory and on the disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import type { GroupCommitOutbox } from '../../src/store/outbox-core.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';
import { msg, payloads } from './outbox-helpers.js';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;
const limits = { maxBytes: Infinity, maxRows: Infinity, maxAgeMs: HOUR, whenFull: 'drop-oldest' as const };
let dir: string;
let wall: SteppingWall;
const open: Array<() => Promise<void>> = [];

function sqlite(): { db: StoreDatabase; outbox: SqliteOutbox } {
  const db = openDatabase({ dir, synchronous: 'full', log, clock: wall.clock });
  const outbox = new SqliteOutbox({ db, clock: wall.clock, log, commitWindowMs: 0, sweepIntervalMs: 1000 });
  outbox.configure('cloud', limits);
  const off = wall.clock.onStep((d) => outbox.clockStepped(d));
  open.push(async () => {
    off();
    await outbox.close();
    db.close();
  });
  return { db, outbox };
}

function memory(): { outbox: MemoryOutbox } {
  const outbox = new MemoryOutbox({ clock: wall.clock, log, commitWindowMs: 0, sweepIntervalMs: 1000 });
  outbox.configure('cloud', limits);
  wall.clock.onStep((d) => outbox.clockStepped(d));
  open.push(() => outbox.close());
  return { outbox };
}

async function backlog(outbox: GroupCommitOutbox, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => outbox.append('cloud', msg('site/t', `m${i}`))));
}

/** Ages of the stored rows in minutes, as the database holds them. */
function storedAgesMin(db: StoreDatabase): number[] {
  const rows = db.handle.prepare('SELECT created_at AS c FROM outbox ORDER BY seq').all() as Array<{ c: number }>;
  return rows.map((r) => Math.round((wall.clock.now() - r.c) / 60_000));
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-clock-step-'));
  wall = new SteppingWall();
});
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ['SQLite', sqlite],
  ['memory', memory],
])('the %s outbox across a step of the wall clock', (_name, make) => {
  it('keeps a backlog of fresh rows after the wall clock steps forward 3 days, and sends it', async () => {
    const { outbox } = make();
    await backlog(outbox, 5);
    wall.advance(10 * 60_000);
    wall.step(3 * DAY);
    wall.advance(5000); // the age sweep runs every second
    await outbox.flush();
    expect(payloads(outbox, 'cloud')).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(outbox.stats('cloud').drops).toEqual({});
    expect(wall.clock.now() - outbox.stats('cloud').oldestCreatedAt!).toBe(10 * 60_000 + 5000);
  });

  it('still drops rows older than max_age on the monotonic clock when the wall clock steps', async () => {
    const { outbox } = make();
    await backlog(outbox, 3);
    wall.advance(2 * HOUR);
    wall.step(3 * DAY);
    expect(payloads(outbox, 'cloud')).toEqual([]);
    await outbox.flush();
    expect(outbox.stats('cloud').drops).toEqual({ 'expired-age': 3 });
  });

  it('keeps the remaining Message Expiry of a row after a step of 1 day', async () => {
    const { outbox } = make();
    await outbox.append('cloud', msg('site/t', 'x', { expiresAt: wall.clock.now() + 60_000 }));
    wall.advance(20_000);
    wall.step(DAY);
    const [e] = outbox.read('cloud', 0, 10);
    expect(e!.expiresAt! - wall.clock.now()).toBe(40_000);
  });

  it('moves the stamps of rows appended but not yet committed when the step comes', async () => {
    const { outbox } = make();
    const appended = outbox.append('cloud', msg('site/t', 'pending')); // commits on the next tick
    wall.step(-2 * DAY);
    wall.advance(1000); // the step is seen by the periodic check of whoever asks the time
    wall.clock.now();
    await appended;
    const [e] = outbox.read('cloud', 0, 10);
    expect(wall.clock.now() - e!.createdAt).toBe(1000);
  });
});

describe('the SQLite outbox across a step of the wall clock', () => {
  it('stores the moved stamps in the next commit, so a restart sees the true ages', async () => {
    const first = sqlite();
    await backlog(first.outbox, 3);
    wall.advance(10 * 60_000);
    wall.step(3 * DAY);
    wall.clock.now();
    await first.outbox.flush();
    expect(storedAgesMin(first.db)).toEqual([10, 10, 10]);
    await open.pop()!();
    const second = sqlite();
    expect(payloads(second.outbox, 'cloud')).toEqual(['m0', 'm1', 'm2']);
  });

  it('moves rows it reads from the database before the commit that stores the step', async () => {
    const { db, outbox } = sqlite();
    const big = 'x'.repeat(300 * 1024); // the committed tail keeps 512 KiB: the older rows are read from the file
    for (const p of ['a', 'b', 'c']) await outbox.append('cloud', msg('site/t', p + big));
    wall.advance(30 * 60_000);
    wall.step(3 * DAY);
    wall.clock.now();
    const entries = outbox.read('cloud', 0, 10);
    expect(entries.map((e) => (wall.clock.now() - e.createdAt) / 60_000)).toEqual([30, 30, 30]);
    expect((wall.clock.now() - outbox.stats('cloud').oldestCreatedAt!) / 60_000).toBe(30);
    await outbox.flush();
    expect(storedAgesMin(db)).toEqual([30, 30, 30]);
  });

  it('leaves the rows of an earlier run alone: their age includes the time the gateway was off', async () => {
    const first = sqlite();
    await backlog(first.outbox, 2);
    await open.pop()!();
    wall.advance(50 * 60_000); // off for 50 minutes; the Pi boots 3 days behind and NTP sets it
    wall.step(-3 * DAY);
    wall.restart(); // a new process: the step at boot is not seen
    const second = sqlite();
    await second.outbox.append('cloud', msg('site/t', 'after boot'));
    wall.advance(20 * 60_000);
    wall.step(3 * DAY);
    wall.clock.now();
    expect(payloads(second.outbox, 'cloud')).toEqual(['after boot']);
    await second.outbox.flush();
    expect(second.outbox.stats('cloud').drops).toEqual({ 'expired-age': 2 });
    expect(storedAgesMin(second.db)).toEqual([20]);
  });
});
