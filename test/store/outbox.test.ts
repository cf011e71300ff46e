/**
 * The outbox contract against every implementation: SQLite on a file, SQLite in
 * memory, and MemoryOutbox.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { MEMORY, openDatabase } from '../../src/store/database.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { outboxContract, type OutboxFactoryOptions, type OutboxHarness } from './outbox-contract.js';

const log = pino({ level: 'silent' });

function sqlite(file: 'tmp' | typeof MEMORY) {
  return ({ clock, commitWindowMs = 0, sweepIntervalMs }: OutboxFactoryOptions): OutboxHarness => {
    const dir = file === 'tmp' ? mkdtempSync(path.join(os.tmpdir(), 'outpost-outbox-')) : '';
    const db = openDatabase({ dir, file: file === 'tmp' ? undefined : MEMORY, synchronous: 'full', log, clock });
    const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs, sweepIntervalMs });
    return {
      outbox,
      close: async () => {
        await outbox.close();
        db.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

outboxContract('SqliteOutbox on a file', sqlite('tmp'));
outboxContract('SqliteOutbox in :memory:', sqlite(MEMORY));
outboxContract('MemoryOutbox', ({ clock, commitWindowMs = 0, sweepIntervalMs }) => {
  const outbox = new MemoryOutbox({ clock, log, commitWindowMs, sweepIntervalMs });
  return { outbox, close: () => outbox.close() };
});
