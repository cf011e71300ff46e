/**
 * The remote filters a bridge keeps (src/store/remote-filters.ts): what SQLite saves
 * survives a restart, and a damaged record reads as none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { MemoryRemoteFilters, SqliteRemoteFilters } from '../../src/store/remote-filters.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
let dir: string;
const opened: StoreDatabase[] = [];
const open = (): StoreDatabase => {
  const db = openDatabase({ dir, synchronous: 'full', log, clock: new FakeClock() });
  opened.push(db);
  return db;
};

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-remote-filters-'));
});
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('remote filters in SQLite', () => {
  it('carries each bridge\'s filters over a restart, as the last save left them', () => {
    const db = open();
    const filters = new SqliteRemoteFilters(db);
    expect(filters.get('cloud')).toEqual([]);
    filters.save('cloud', ['a/#', 'b/+/c']);
    filters.save('cloud', ['b/+/c']);
    filters.save('backup', ['x/#']);
    db.close();
    opened.splice(0);

    const again = new SqliteRemoteFilters(open());
    expect(again.get('cloud')).toEqual(['b/+/c']);
    expect(again.get('backup')).toEqual(['x/#']);
  });

  it('reads a damaged record as no filters, and throws on a closed database', () => {
    const db = open();
    const filters = new SqliteRemoteFilters(db);
    filters.save('cloud', ['a/#']);
    db.handle.prepare("UPDATE meta SET value = '{not json' WHERE key = 'remote_filters:cloud'").run();
    expect(filters.get('cloud')).toEqual([]);
    db.handle.prepare("UPDATE meta SET value = '[\"a/#\", 7]' WHERE key = 'remote_filters:cloud'").run();
    expect(filters.get('cloud')).toEqual(['a/#']);
    db.close();
    opened.splice(0);
    expect(() => filters.save('cloud', ['b/#'])).toThrow();
  });
});

describe('remote filters in memory', () => {
  it('hands out copies, so a caller cannot change what is saved', () => {
    const filters = new MemoryRemoteFilters();
    filters.save('cloud', ['a/#']);
    filters.get('cloud').push('b/#');
    expect(filters.get('cloud')).toEqual(['a/#']);
  });
});
