/**
 * Persistent MQTT-SN sessions in SQLite (src/store/sn-sessions.ts): saves and deletes ride
 * in the outbox's group commits and what was committed is there after a reopen.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { SqliteSnSessions } from '../../src/store/sn-sessions.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
const clock = new FakeClock();
let dir: string;
const opened: StoreDatabase[] = [];

function open(): { db: StoreDatabase; outbox: SqliteOutbox; sessions: SqliteSnSessions } {
  const db = openDatabase({ dir, synchronous: 'full', log, clock });
  opened.push(db);
  const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0 });
  const sessions = new SqliteSnSessions(db);
  sessions.attach(outbox.join(sessions));
  return { db, outbox, sessions };
}

const record = (filter: string) => JSON.stringify({ subs: [[filter, 1]], topics: [[1, filter, true]] });

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-sn-sessions-'));
});
afterEach(() => {
  for (const db of opened.splice(0)) if (db.handle.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('persistent MQTT-SN sessions in SQLite', () => {
  it('keeps the last save of each client over a reopen, and forgets deleted ones', async () => {
    const a = open();
    a.sessions.save('s1', record('cmd/1'));
    a.sessions.save('s2', record('cmd/2'));
    a.sessions.save('s1', record('cmd/1b'));
    await a.outbox.flush();
    a.sessions.delete('s2');
    a.sessions.save('s3', record('cmd/3'));
    await a.outbox.close();
    a.sessions.close();
    a.db.close();

    const b = open();
    const loaded = b.sessions.load();
    expect([...loaded.keys()].sort()).toEqual(['s1', 's3']);
    expect(loaded.get('s1')).toEqual({ subs: [['cmd/1b', 1]], topics: [[1, 'cmd/1b', true]] });
  });

  it('writes in the same commit as the outbox appends, not in one of its own', async () => {
    const { outbox, sessions } = open();
    outbox.configure('cloud', { maxBytes: Infinity, maxRows: Infinity, maxAgeMs: Infinity, whenFull: 'drop-oldest' });
    const before = outbox.commits;
    sessions.save('s1', record('cmd/1'));
    await outbox.append('cloud', { topic: 'site/x', payload: Buffer.from('1'), qos: 1, retain: false, origin: { kind: 'mqttsn', id: 's1' } });
    expect(outbox.commits - before).toBe(1);
    expect(sessions.load().has('s1')).toBe(true);
  });

  it('forgets every stored session when store.persist_sessions is switched off', async () => {
    const a = open();
    a.sessions.save('s1', record('cmd/1'));
    await a.outbox.close();
    a.sessions.close();
    SqliteSnSessions.forgetAll(a.db);
    expect(a.sessions.load().size).toBe(0);
  });

  it('settles a wait for a client once its save is committed, and has nothing to wait for otherwise', async () => {
    const { outbox, sessions } = open();
    expect(sessions.committed('s1')).toBeUndefined();
    sessions.save('s1', record('cmd/1'));
    const wait = sessions.committed('s1');
    expect(wait).toBeInstanceOf(Promise);
    expect(sessions.committed('s2')).toBeUndefined();
    const before = outbox.commits;
    await wait;
    expect(outbox.commits - before).toBe(1);
    expect(sessions.load().has('s1')).toBe(true);
    expect(sessions.committed('s1')).toBeUndefined();
  });

  it('rejects a wait when the store closes before the commit', async () => {
    const { sessions } = open();
    sessions.save('s1', record('cmd/1'));
    const wait = sessions.committed('s1')!;
    sessions.close();
    await expect(wait).rejects.toThrow(/not stored/);
  });
});
