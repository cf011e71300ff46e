/**
 * The filters a bridge's cloud session may hold subscribed, kept across restarts: a
 * persistent remote session keeps the subscriptions of inbound rules a later config no
 * longer has, and only an UNSUBSCRIBE on a later connect ends them (Bridge.subscribeInbound).
 *
 * SQLite keeps them in the `meta` table of the gateway's database (one row per bridge,
 * a JSON array), so no migration is needed; they change only when a bridge connects.
 */
import type { StoreDatabase } from './database.js';

export interface RemoteFilterStore {
  /** The filters last saved for `bridge`, [] if none (or unreadable). */
  get(bridge: string): string[];
  /** Replaces them; may throw (disk full, database closed). */
  save(bridge: string, filters: readonly string[]): void;
}

/** Nothing survives a restart: for tests of the bridge. */
export class MemoryRemoteFilters implements RemoteFilterStore {
  private readonly byBridge = new Map<string, string[]>();

  get(bridge: string): string[] {
    return [...(this.byBridge.get(bridge) ?? [])];
  }

  save(bridge: string, filters: readonly string[]): void {
    this.byBridge.set(bridge, [...filters]);
  }
}

/** Key prefix of a bridge's row in `meta`. */
const KEY = 'remote_filters:';

export class SqliteRemoteFilters implements RemoteFilterStore {
  constructor(private readonly db: StoreDatabase) {}

  get(bridge: string): string[] {
    const text = this.db.handle.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY + bridge) as string | undefined;
    if (text === undefined) return [];
    try {
      const v: unknown = JSON.parse(text);
      return Array.isArray(v) ? v.filter((f): f is string => typeof f === 'string') : [];
    } catch {
      return []; // the worst case is a stale remote subscription, as before this record existed
    }
  }

  save(bridge: string, filters: readonly string[]): void {
    this.db.handle
      .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
      .run(KEY + bridge, JSON.stringify(filters));
  }
}
