/**
 * What the group-commit engine (outbox-core.ts) needs from a storage backend: a handful
 * of row operations that run inside `transaction`. SQLite (sqlite-outbox.ts) and plain
 * maps (memory-outbox.ts) implement it, so caps, policies, counters and commit batching
 * live in one place and every backend behaves the same.
 */
import type { OutpostError } from '../core/errors.js';

/** A row as the backends return it. */
export interface StoredRow {
  seq: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  props: string | null;
  createdAt: number;
  expiresAt: number | null;
  originKind: string;
  originId: string;
  sourceSeq: number;
}

/**
 * A row to insert. Its seq (0 until then) and sourceSeq are filled in by the commit that
 * inserts it; after that commit the same object serves as the stored row (committed-tail.ts).
 */
export interface NewRow extends StoredRow {
  bridge: string;
  bytes: number;
}

/** What a delete tells the commit: the row's size and its source's sequence number. */
export interface RemovedRow {
  bytes: number;
  originKind: string;
  originId: string;
  sourceSeq: number;
}

/** The last sequence number handed out for one source of one bridge. */
export interface SourceSeq {
  bridge: string;
  originKind: string;
  originId: string;
  last: number;
}

/** The head of a bridge's queue, for drop-oldest and the age sweep. */
export interface HeadRow {
  seq: number;
  bytes: number;
  createdAt: number;
}

export interface OutboxBackend {
  /** Prefix of message ids: "<storeId>-<seq>". */
  readonly storeId: string;
  /** Runs `fn` atomically: everything it did is undone if it throws. */
  transaction(fn: () => void): void;
  /** Inserts a row and returns its seq (greater than any seq ever returned before). */
  insert(row: NewRow): number;
  /**
   * Deletes one row of `bridge`; returns what the commit needs of it, or undefined when it
   * was not there. `known`: what the caller already holds of the row (its committed copy), so
   * the backend need not read it first.
   */
  remove(bridge: string, seq: number, known?: RemovedRow): RemovedRow | undefined;
  /** The `limit` oldest rows of `bridge`. */
  head(bridge: string, limit: number): HeadRow[];
  /** The newest seq of `bridge`, 0 when it has no rows. */
  newest(bridge: string): number;
  /** Up to `limit` rows of `bridge` with seq > afterSeq, oldest first. */
  read(bridge: string, afterSeq: number, limit: number): StoredRow[];
  /** The per-source sequence number last saved in the source table, 0 if none. */
  lastSourceSeq(bridge: string, originKind: string, originId: string): number;
  /** Saves a per-source sequence number; a lower one than saved before is ignored. */
  saveSourceSeq(bridge: string, originKind: string, originId: string, last: number): void;
  /** The highest per-source sequence number among the rows, per source (read once at start). */
  sourceSeqsInRows(): SourceSeq[];
  /**
   * Moves created_at and expires_at of the rows of `bridge` with seq > afterSeq by `deltaMs`
   * (a step of the wall clock, stamp-shift.ts); runs inside `transaction`.
   */
  shiftStamps(deltaMs: number, bridge: string, afterSeq: number): void;
  /** Rows and bytes per bridge, to seed the in-memory counters once. */
  totals(): Array<{ bridge: string; rows: number; bytes: number }>;
  /** Turns a failed transaction into the error the appends of that batch reject with. */
  storeError(err: unknown, messages: number): OutpostError;
  /**
   * The deletes of a draining bridge failed for want of space: give space back where the
   * backend can (SQLite: delete the disk reserve, checkpoint and truncate the WAL). True
   * when something was given back, so they are worth trying again. Never throws.
   */
  relieve?(): boolean;
  /** Hands space freed by deletes back to the disk (SQLite: checkpoint and truncate the WAL). Never throws. */
  checkpoint?(): boolean;
  /**
   * After every successful commit, with the rows and bytes now queued in all bridges (SQLite: writes
   * the released reserve again once there is room; checkpoints once the outbox is nearly
   * empty). Never throws.
   */
  afterCommit?(queued: { rows: number; bytes: number }): void;
}
