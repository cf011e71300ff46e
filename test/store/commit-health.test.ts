/**
 * /healthz learns of commits that keep failing (commit-health.ts), from a real outbox whose
 * database refuses writes: the committer keeps turning, so the progress watchdog cannot see it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CommitHealth } from '../../src/store/commit-health.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { msg } from './outbox-helpers.js';

const log = pino({ level: 'silent' });
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('commit health', () => {
  it('turns unhealthy only after commits failed for the whole grace period, with the last error, and healthy at the next commit', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-commit-health-'));
    const clock = new FakeClock();
    const db = openDatabase({ dir, synchronous: 'normal', log, clock });
    const health = new CommitHealth(clock, 30_000);
    const outbox = new SqliteOutbox({ db, clock, log, commitWindowMs: 0, retryMs: 60_000, onCommit: () => health.committed(), onCommitFailed: (e) => health.failed(e) });
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }), () => db.close(), () => outbox.close());

    await outbox.append('cloud', msg('a', '1'));
    expect(health.state()).toBe('ok');
    db.handle.pragma('query_only = ON');
    await expect(outbox.append('cloud', msg('a', '2'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    clock.advance(29_000);
    expect(health.state()).toBe('ok');
    await expect(outbox.append('cloud', msg('a', '3'))).rejects.toThrow();
    clock.advance(2_000);
    expect(health.state()).toMatch(/^every commit has failed for 31s, nothing is acknowledged: .+/);

    db.handle.pragma('query_only = OFF');
    await outbox.append('cloud', msg('a', '4'));
    expect(health.state()).toBe('ok');
  });
});
