/**
 * openDatabase: the pragmas it promises, the store id, sizes for metrics, :memory:.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MEMORY, openDatabase, PAGE_CACHE_KIB, type StoreDatabase } from '../../src/store/database.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

const log = pino({ level: 'silent' });
let dir: string;
const open: StoreDatabase[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-db-'));
});
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function openAt(d: string, synchronous: 'full' | 'normal' = 'full', file?: string): StoreDatabase {
  const db = openDatabase({ dir: d, file, synchronous, log });
  open.push(db);
  return db;
}

describe('openDatabase', () => {
  it('creates the directory and <dir>/outpost.db in WAL mode at the current schema version', () => {
    const db = openAt(path.join(dir, 'nested', 'state'));
    expect(db.file).toBe(path.join(dir, 'nested', 'state', 'outpost.db'));
    expect(db.handle.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.handle.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.movedAside).toBeUndefined();
  });

  it('keeps a 1 MiB page cache, not the 16 MiB better-sqlite3 builds SQLite with', () => {
    const db = openAt(dir);
    expect(db.handle.pragma('cache_size', { simple: true })).toBe(-PAGE_CACHE_KIB);
    expect(PAGE_CACHE_KIB).toBe(1024);
  });

  for (const [sync, level] of [
    ['full', 2],
    ['normal', 1],
  ] as const) {
    it(`sets synchronous=${sync.toUpperCase()} when asked for ${sync}`, () => {
      expect(openAt(dir, sync).handle.pragma('synchronous', { simple: true })).toBe(level);
    });
  }

  it('keeps the random store id made at creation across reopens', () => {
    const first = openAt(dir);
    const id = first.storeId;
    first.close();
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(openAt(dir).storeId).toBe(id);
    expect(openAt(path.join(dir, 'other')).storeId).not.toBe(id);
  });

  it('reports the sizes of the database file and its WAL', () => {
    const db = openAt(dir);
    db.handle.exec("CREATE TABLE filler (x BLOB); INSERT INTO filler VALUES (zeroblob(100000));");
    const { db: main, wal } = db.diskBytes();
    expect(main).toBeGreaterThan(0);
    expect(wal).toBeGreaterThan(100_000); // committed to the WAL, not yet checkpointed
  });

  it('opens a private :memory: database that touches no directory', () => {
    const db = openAt(path.join(dir, 'never-created'), 'full', MEMORY);
    expect(db.file).toBe(MEMORY);
    expect(db.storeId).toMatch(/^[0-9a-f]{16}$/);
    expect(db.diskBytes()).toEqual({ db: 0, wal: 0 });
    expect(existsSync(path.join(dir, 'never-created'))).toBe(false);
  });

  it('fails with a sentence naming the directory when it cannot be created', () => {
    const blocker = path.join(dir, 'a-file');
    writeFileSync(blocker, 'a regular file where a directory is needed');
    expect(() => openAt(path.join(blocker, 'state'))).toThrow(/state directory .*a-file\/state cannot be created .*store\.dir/);
  });
});

