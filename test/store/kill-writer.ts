/**
 * Child process of the kill -9 test: appends to an outbox with synchronous=FULL as fast
 * as it can (200 appends outstanding) and prints "<n>\n" for every append whose promise
 * resolved. Stdout to a pipe is synchronous on Linux (Node docs, "A note on process I/O"),
 * so a printed number left this process before it could be killed.
 * Usage: node --import tsx test/store/kill-writer.ts <dir>
 */
import pino from 'pino';
import { systemClock } from '../../src/core/clock.js';
import { openDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: kill-writer.ts <dir>');
const log = pino({ level: 'silent' });
const db = openDatabase({ dir, synchronous: 'full', log });
const outbox = new SqliteOutbox({ db, clock: systemClock, log, commitWindowMs: 0 });

let next = 0;
function one(): void {
  const n = ++next;
  outbox.append('cloud', { topic: 'sensors/kill', payload: Buffer.from(String(n)), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'writer' } }).then(
    () => {
      process.stdout.write(`${n}\n`);
      one();
    },
    (err: unknown) => {
      process.stderr.write(`append ${n} failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
for (let i = 0; i < 200; i++) one();
