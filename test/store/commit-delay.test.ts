/**
 * The commit delay on a real SQLite file: messages of publishers that do not wait share a
 * commit held up to store.commit_delay; a publisher awaiting each append, a SUBACK-like
 * wait and a flush are committed within the commit window all the same.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Origin } from '../../src/core/message.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { SqliteStateJournal } from '../../src/store/state-journal.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg } from './outbox-helpers.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let dir: string;
const cleanup: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-commit-delay-'));
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  rmSync(dir, { recursive: true, force: true });
});

function open(commitDelayMs: number) {
  const clock = new FakeClock();
  const db = openDatabase({ dir, synchronous: 'normal', log, clock });
  const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 2, commitDelayMs });
  const journal = new SqliteStateJournal({ db, persistSessions: true, persistRetained: true });
  journal.attach(outbox.join(journal));
  cleanup.push(async () => {
    await outbox.close();
    journal.close();
    db.close();
  });
  return { outbox, journal };
}

const sensor = (i: number): Origin => ({ kind: 'mqttsn', id: `sensor-${i}` });

describe('store.commit_delay', () => {
  it('puts the readings of 40 periodic sensors in one commit held for the delay', async () => {
    const { outbox } = open(300);
    // Each sensor's first message is answered at once (a new publisher may be waiting).
    await Promise.all(Array.from({ length: 40 }, (_, i) => outbox.append('cloud', msg('t', `hello ${i}`, { origin: sensor(i) }))));
    await sleep(350); // longer than the delay: their next readings are not replies to an answer
    const before = outbox.commits;
    const started = performance.now();
    const done: number[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      all.push(outbox.append('cloud', msg('t', `reading ${i}`, { origin: sensor(i) })).then(() => void done.push(performance.now() - started)));
      if (i % 10 === 9) await sleep(20);
    }
    await Promise.all(all);
    expect(outbox.commits - before).toBe(1);
    expect(Math.min(...done)).toBeGreaterThanOrEqual(250); // held for (about) the 300 ms delay
  });

  it('commits each append of a publisher that awaits it within the commit window, not the delay', async () => {
    const { outbox } = open(1000);
    const origin: Origin = { kind: 'mqtt', id: 'script' };
    const started = performance.now();
    for (let i = 0; i < 50; i++) await outbox.append('cloud', msg('t', `m${i}`, { origin }));
    // Held for the delay, 50 appends would take 50 s; prompt, they take a few ms each.
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('answers a wait without an origin (a SUBACK) within the commit window, even behind held work', async () => {
    const { outbox, journal } = open(2000);
    await outbox.append('cloud', msg('t', 'first', { origin: sensor(1) }));
    await sleep(30);
    const held = outbox.append('cloud', msg('t', 'second', { origin: sensor(1) })); // held up to 2 s
    journal.saveSubscription('c1', { filter: 'a/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined });
    const started = performance.now();
    await journal.committed();
    expect(performance.now() - started).toBeLessThan(1000);
    await held; // it rode in the same commit
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('holds cloud acknowledgements for the delay but flush() commits them at once', async () => {
    const { outbox } = open(2000);
    await outbox.append('cloud', msg('t', 'a', { origin: sensor(1) }));
    const [row] = outbox.read('cloud', 0, 10);
    const before = outbox.commits;
    outbox.ack('cloud', [row!.seq]);
    await sleep(50);
    expect(outbox.commits).toBe(before); // still held
    const started = performance.now();
    await outbox.flush();
    expect(outbox.commits).toBe(before + 1);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(outbox.stats('cloud').rows).toBe(0);
  });
});
