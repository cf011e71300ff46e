/** The disk reserve on a real directory: written once, kept across starts, released, written again when there is room. */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskReserve } from '../../src/store/reserve.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-reserve-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const log = pino({ level: 'silent' });

describe('DiskReserve', () => {
  it('writes the reserve once and keeps a file of the right size from an earlier run without rewriting it', () => {
    const file = join(tmp, 'a.reserve');
    expect(new DiskReserve(file, 256 * 1024, log).ensure()).toBe(true);
    expect(statSync(file).size).toBe(256 * 1024);
    const written = statSync(file).mtimeMs;
    const again = new DiskReserve(file, 256 * 1024, log);
    expect(again.ensure()).toBe(true);
    expect(again.isHeld).toBe(true);
    expect(statSync(file).mtimeMs).toBe(written);
  });

  it('replaces a reserve of another size (the setting changed)', () => {
    const file = join(tmp, 'b.reserve');
    writeFileSync(file, Buffer.alloc(1000));
    expect(new DiskReserve(file, 64 * 1024, log).ensure()).toBe(true);
    expect(statSync(file).size).toBe(64 * 1024);
  });

  it('gives the space back once, and writes it again after a recovery when the disk has room (tried at most every 10 s)', () => {
    const file = join(tmp, 'c.reserve');
    let now = 0;
    const r = new DiskReserve(file, 64 * 1024, log, () => now);
    r.ensure();
    expect(r.isReleased).toBe(false);
    expect(r.release()).toBe(true);
    expect(r.isReleased).toBe(true); // the outbox keeps its room free for the drain meanwhile
    expect(existsSync(file)).toBe(false);
    expect(r.release()).toBe(false);
    now = 20_000;
    r.restore(tmp);
    expect(r.isHeld).toBe(true);
    expect(r.isReleased).toBe(false);
    expect(statSync(file).size).toBe(64 * 1024);
  });

  it('holds nothing when store.reserve is 0', () => {
    const file = join(tmp, 'd.reserve');
    const none = new DiskReserve(file, 0, log);
    expect(none.ensure()).toBe(false);
    expect(none.isReleased).toBe(false); // nothing was given back: appends are not held to it
    expect(existsSync(file)).toBe(false);
  });
});
