/**
 * What a start says when the store cannot be opened at all: each sentence names what is
 * wrong in the operator's terms, not SQLite's bare code with a hint about permissions.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockStateDir, openDatabase } from '../../src/store/database.js';

const log = pino({ level: 'silent' });
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-open-failures-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('a start that cannot open the store', () => {
  for (const name of ['outpost.db', 'outpost.db-wal']) {
    it(`says that ${name} is a directory, to be moved out of store.dir`, () => {
      mkdirSync(path.join(dir, name));
      if (name !== 'outpost.db') writeFileSync(path.join(dir, 'outpost.db'), '');
      expect(() => openDatabase({ dir, synchronous: 'full', log })).toThrow(`${path.join(dir, name)} is a directory, not a file); move it out of store.dir`);
    });
  }

  it('says the disk is full when the first start finds no room for the lock, not to fix permissions', () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs, which needs root (as .ci/run runs the suite)');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    try {
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${path.join(dir, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
      } catch {
        // dd stops at ENOSPC: the disk is full now
      }
      expect(() => lockStateDir(dir)).toThrow(expect.objectContaining({ code: 'STORE_FULL', message: expect.stringMatching(/its disk is full .*free space on the disk of store\.dir/) }));
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('a damaged lock file', () => {
  it('is emptied and taken, since it holds nothing, instead of stopping every start with SQLITE_NOTADB', () => {
    writeFileSync(path.join(dir, 'outpost.lock'), Buffer.alloc(4096, 0x5a));
    const lock = lockStateDir(dir);
    expect(() => lockStateDir(dir)).toThrow(/another outpost is already running/);
    lock.release();
  });

  it('that is a directory is named as such', () => {
    mkdirSync(path.join(dir, 'outpost.lock'));
    expect(() => lockStateDir(dir)).toThrow(`${path.join(dir, 'outpost.lock')} is a directory, not a file; move it out of store.dir`);
  });
});
