/**
 * The inbound QoS 2 packet ids of each bridge that were delivered locally and whose
 * exchange with the cloud has not finished (no PUBREL yet): MQTT's method B de-dup
 * [MQTT-4.3.3-9, -10], kept on the disk so that a PUBLISH the cloud sends again after a
 * crash of this process (kill -9, power cut) is answered without being delivered twice.
 * A bridge's cloud session outlives us (clean_start: false), and with it the exchanges it
 * had in flight; in memory only, the ids were gone after a restart and the resent
 * PUBLISH (same id, DUP) reached local subscribers a second time.
 *
 *   PUBLISH (QoS 2, new id) ─▶ local delivery ┐ one group commit (the outbox's, which
 *                               record id     ┘ also holds the delivery's rows) ─▶ PUBREC
 *   PUBREL ─▶ forget id ─▶ commit ─▶ PUBCOMP   (an id forgotten only on the disk after
 *                                              PUBCOMP would drop a later new message)
 *
 * One row per bridge in `meta` (a JSON array: the ids in flight are at most the cloud's
 * inflight window), written in the outbox's commits as a CommitParticipant, so it costs
 * no fsync of its own. No migration: `meta` exists since version 1.
 */
import type { StoreDatabase } from './database.js';
import type { CommitBatch, CommitJoin, CommitParticipant } from './outbox-core.js';

/** One bridge's handle (the bridge's UpstreamOptions.inboundQos2). */
export interface InboundQos2Record {
  /** The ids recorded when the handle was made. */
  readonly ids: readonly number[];
  /** Records `id`; resolves once that is committed (rejects when the commit failed). */
  add(id: number): Promise<void>;
  /** Forgets `id`; resolves once that is committed (rejects when the commit failed). */
  remove(id: number): Promise<void>;
  /** The cloud started a new session: no exchange survives [MQTT-4.4.0-1]. */
  clear(): Promise<void>;
}

const KEY = 'inbound_qos2:';

type Waiter = { resolve: () => void; reject: (err: unknown) => void };

export class SqliteInboundQos2 implements CommitParticipant {
  private readonly ids = new Map<string, Set<number>>();
  /** Bridges whose row must be written in the next commit. */
  private dirty = new Set<string>();
  private waiters: Waiter[] = [];
  private join: CommitJoin | undefined;

  constructor(private readonly db: StoreDatabase) {}

  attach(join: CommitJoin): void {
    this.join = join;
  }

  forBridge(bridge: string): InboundQos2Record {
    const set = this.load(bridge);
    const change = (f: (s: Set<number>) => void): Promise<void> => {
      f(set);
      this.dirty.add(bridge);
      return this.commit();
    };
    return {
      ids: [...set],
      add: (id) => change((s) => s.add(id)),
      remove: (id) => change((s) => s.delete(id)),
      clear: () => (set.size === 0 ? Promise.resolve() : change((s) => s.clear())), // every new session: no write when none was kept
    };
  }

  hasWork(): boolean {
    return this.dirty.size > 0;
  }

  take(): CommitBatch | undefined {
    if (this.dirty.size === 0) return undefined;
    const rows = [...this.dirty].map((b) => ({ key: KEY + b, ids: [...(this.ids.get(b) ?? [])] }));
    const dirty = this.dirty;
    const waiters = this.waiters;
    this.dirty = new Set();
    this.waiters = [];
    return {
      write: () => {
        const upsert = this.db.handle.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
        const del = this.db.handle.prepare('DELETE FROM meta WHERE key = ?');
        for (const r of rows) {
          if (r.ids.length === 0) del.run(r.key);
          else upsert.run(r.key, JSON.stringify(r.ids));
        }
      },
      committed: () => {
        for (const w of waiters) w.resolve();
      },
      failed: (err) => {
        for (const b of dirty) this.dirty.add(b); // written again with the next commit
        for (const w of waiters) w.reject(err);
      },
    };
  }

  private commit(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      // Somebody waits: the cloud for our PUBREC / PUBCOMP (commit within the commit window).
      if (this.join?.schedule({}) !== true) {
        this.waiters.pop();
        reject(new Error('the store is closed'));
      }
    });
  }

  private load(bridge: string): Set<number> {
    let set = this.ids.get(bridge);
    if (set !== undefined) return set;
    set = new Set();
    const text = this.db.handle.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY + bridge) as string | undefined;
    try {
      const v: unknown = text === undefined ? [] : JSON.parse(text);
      if (Array.isArray(v)) for (const id of v) if (Number.isInteger(id) && id > 0 && id <= 65_535) set.add(id as number);
    } catch {
      // unreadable: the worst case is the duplicate this record exists to avoid
    }
    this.ids.set(bridge, set);
    return set;
  }
}
