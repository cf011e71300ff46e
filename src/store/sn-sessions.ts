/**
 * Persistent MQTT-SN sessions in the gateway's database (table sn_sessions, migration 5).
 * Saves and deletes wait in memory, the newest per client, and ride in the next group
 * commit of the outbox like the broker's session journal: never a commit of their own.
 */
import { deferred, type Deferred } from '../core/deferred.js';
import { OutpostError } from '../core/errors.js';
import { parseRecords, type SnSessionRecord, type SnSessionStore } from '../mqttsn/persistence.js';
import type { SqliteStatement, StoreDatabase } from './database.js';
import type { CommitBatch, CommitJoin, CommitParticipant } from './outbox-core.js';

export class SqliteSnSessions implements SnSessionStore, CommitParticipant {
  /** Client id → its record to write, or null to delete it. */
  private pending = new Map<string, string | null>();
  /** Settled by the commit that takes `pending` (one per batch, made when somebody waits). */
  private deferred: Deferred | undefined;
  private join: CommitJoin | undefined;
  private statements: { upsert: SqliteStatement; remove: SqliteStatement } | undefined;

  constructor(private readonly db: StoreDatabase) {}

  /** store.persist_sessions: false: sessions stored by an earlier run are forgotten, not kept for later. */
  static forgetAll(db: StoreDatabase): void {
    db.handle.prepare('DELETE FROM sn_sessions').run();
  }

  /** Connects the store to the commits it rides in. */
  attach(join: CommitJoin): void {
    this.join = join;
  }

  /** No more writes; what is pending was committed by the outbox's close. */
  close(): void {
    this.join?.leave();
    this.join = undefined;
    this.pending = new Map();
    const d = this.deferred;
    this.deferred = undefined;
    d?.reject(new OutpostError('STORE_UNAVAILABLE', 'the store is closed; the MQTT-SN session was not stored'));
  }

  load(): Map<string, SnSessionRecord> {
    const rows = this.db.handle.prepare('SELECT client_id, record FROM sn_sessions').raw().all() as Array<[string, string]>;
    return parseRecords(rows);
  }

  save(clientId: string, record: string): void {
    this.queue(clientId, record);
  }

  delete(clientId: string): void {
    this.queue(clientId, null);
  }

  committed(clientId: string): Promise<void> | undefined {
    if (!this.pending.has(clientId) || this.join === undefined) return undefined;
    this.deferred ??= deferred();
    // Somebody waits: the commit comes at once, not after the commit delay.
    this.join.schedule({});
    return this.deferred.promise;
  }

  hasWork(): boolean {
    return this.pending.size > 0;
  }

  take(): CommitBatch | undefined {
    if (this.pending.size === 0) return undefined;
    const batch = this.pending;
    const deferred = this.deferred;
    this.pending = new Map();
    this.deferred = undefined;
    return {
      write: () => {
        const { upsert, remove } = (this.statements ??= {
          upsert: this.db.handle.prepare('INSERT INTO sn_sessions (client_id, record) VALUES (?, ?) ON CONFLICT (client_id) DO UPDATE SET record = excluded.record'),
          remove: this.db.handle.prepare('DELETE FROM sn_sessions WHERE client_id = ?'),
        });
        for (const [clientId, record] of batch) {
          if (record === null) remove.run(clientId);
          else upsert.run(clientId, record);
        }
      },
      committed: () => deferred?.resolve(),
      failed: (err) => {
        // Kept for the next commit, unless something newer replaced it meanwhile; whoever
        // waited is told (its acknowledgement says the change was refused).
        for (const [clientId, record] of batch) if (!this.pending.has(clientId)) this.pending.set(clientId, record);
        deferred?.reject(err);
      },
    };
  }

  private queue(clientId: string, record: string | null): void {
    if (this.join === undefined) return;
    this.pending.set(clientId, record);
    this.join.schedule();
  }
}
