/**
 * A broker writing through a real SQLite file (the gateway's wiring without listeners):
 * the journal rides in the outbox's commits. `crash()` drops the process state without
 * committing what is pending (like kill -9); `stop()` is a clean stop. A new harness on
 * the same directory is the restart.
 */
import { duplexPair, type Duplex } from 'node:stream';
import type { AccessControl } from '../../src/auth/access-control.js';
import { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import { SqliteOutbox } from '../../src/store/sqlite-outbox.js';
import { SqliteStateJournal } from '../../src/store/state-journal.js';
import { silentLog } from './broker-harness.js';
import { RawClient } from './raw-client.js';

export interface PersistHarness {
  broker: Broker;
  db: StoreDatabase;
  outbox: SqliteOutbox;
  journal: SqliteStateJournal;
  client(version?: 3 | 4 | 5): RawClient;
  stream(): Duplex;
  /** Rows of a table, as the file holds them now. */
  count(table: string): number;
  stop(): Promise<void>;
  crash(): void;
}

export interface PersistOptions {
  broker?: Partial<BrokerOptions>;
  clock?: Clock;
  persistSessions?: boolean;
  persistRetained?: boolean;
  commitWindowMs?: number;
  /** store.commit_delay: how long work nobody waits for may be held (default 0). */
  commitDelayMs?: number;
  /** Password file and ACL in force (default: none, everything allowed). */
  access?: AccessControl;
}

export async function persistentBroker(dir: string, o: PersistOptions = {}): Promise<PersistHarness> {
  const db = openDatabase({ dir, synchronous: 'normal', log: silentLog, clock: o.clock });
  const outbox = new SqliteOutbox({ db, clock: o.clock ?? systemClock, log: silentLog, commitWindowMs: o.commitWindowMs ?? 0, commitDelayMs: o.commitDelayMs ?? 0 });
  const journal = new SqliteStateJournal({ db, persistSessions: o.persistSessions ?? true, persistRetained: o.persistRetained ?? true });
  journal.attach(outbox.join(journal));
  const broker = new Broker(o.broker ?? {}, { log: silentLog, clock: o.clock, access: o.access });
  broker.attachJournal(journal);
  await broker.start();
  const clients: RawClient[] = [];
  const streams: Duplex[] = [];
  let port = 20000;
  const stream = () => {
    const [a, b] = duplexPair();
    a.once('close', () => b.destroy());
    b.once('close', () => a.destroy());
    broker.handle(b, { transport: 'memory', remoteAddress: '10.0.0.2', remotePort: port++ });
    streams.push(a);
    return a;
  };
  let done = false;
  return {
    broker,
    db,
    outbox,
    journal,
    stream,
    client(version = 4) {
      const c = new RawClient(stream(), version);
      clients.push(c);
      return c;
    },
    count: (table) => db.handle.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number,
    async stop() {
      if (done) return;
      done = true;
      await broker.close();
      await outbox.close();
      journal.close();
      db.close();
    },
    crash() {
      if (done) return;
      done = true;
      // Nothing more reaches the file: the journal is cut off before the sockets close.
      journal.close();
      broker.attachJournal(undefined);
      for (const s of streams) s.destroy();
      db.close();
    },
  };
}
