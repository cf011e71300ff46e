/**
 * The outbox: what a bridge must still deliver to its cloud broker. Every message a
 * bridge rule selects is appended here and committed before its publisher is
 * acknowledged; a row is deleted only when the cloud acknowledged it.
 *
 * This interface is what the bridge uses; test/store/outbox-contract.ts is the suite
 * every implementation (SQLite file, SQLite :memory:, in-memory) must pass.
 */
import type { Message, MessageProperties, QoS, SourceKind } from '../core/message.js';

export type OutboxPolicy = 'drop-oldest' | 'drop-newest' | 'reject';

export interface OutboxLimits {
  maxBytes: number;
  maxRows: number;
  /** Rows older than this are dropped undelivered (reason 'expired-age'). */
  maxAgeMs: number;
  whenFull: OutboxPolicy;
}

/** Why a message left the outbox without being delivered. */
export type OutboxDropReason =
  | 'full-oldest' // drop-oldest made room for a newer message
  | 'full-newest' // drop-newest refused the new message (publisher still acknowledged)
  | 'full-rejected' // reject refused the new message (publisher not acknowledged)
  | 'expired-age' // older than max_age
  | 'expired-message' // its MQTT 5 Message Expiry passed before delivery
  | 'store-error' // the disk refused the write (SQLITE_FULL, I/O error)
  | 'cloud-refused' // the cloud refused it for good (PUBACK 0x87 not authorized, 0x90 topic name invalid…); counted by the bridge
  | 'too-large'; // larger than the cloud's Maximum Packet Size; counted by the bridge

export interface OutboxEntry {
  /** Position in the outbox: strictly increasing in append order, never reused. */
  seq: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: MessageProperties | undefined;
  /** Clock ms when appended. */
  createdAt: number;
  /** Absolute expiry (MQTT 5 Message Expiry), if any. */
  expiresAt: number | undefined;
  originKind: SourceKind;
  originId: string;
  /** 1, 2, 3… per (bridge, origin kind, origin id), never reused, survives restarts. */
  sourceSeq: number;
  /** Stable id of this message across resends and restarts: "<store id>-<seq>". */
  msgId: string;
}

export interface OutboxStats {
  rows: number;
  bytes: number;
  /** createdAt of the oldest row, undefined when empty. */
  oldestCreatedAt: number | undefined;
  drops: Partial<Record<OutboxDropReason, number>>;
}

export interface Outbox {
  /** Sets (or changes) the caps of one bridge's queue; call before the first append. */
  configure(bridge: string, limits: OutboxLimits): void;
  /**
   * Queues `msg` for `bridge`. Resolves once the row is committed (group commit: many
   * appends share one transaction). With 'drop-newest' and a full queue it resolves
   * without storing (counted); with 'reject' it rejects with OutpostError STORE_FULL.
   * A failed write rejects with STORE_FULL (disk full) or STORE_UNAVAILABLE.
   * Appends of one message to several bridges that share a `group` (any object, the same
   * for all of them, in the same tick) are stored all or nothing: a bridge with 'reject'
   * that refuses it refuses it for every bridge (append-groups.ts).
   */
  append(bridge: string, msg: Message, group?: object): Promise<void>;
  /** Up to `limit` committed rows with seq > afterSeq, oldest first. Expired rows are skipped and dropped. */
  read(bridge: string, afterSeq: number, limit: number): OutboxEntry[];
  /** The seq of the newest committed row of `bridge`, 0 when it has none. */
  newestSeq(bridge: string): number;
  /**
   * The cloud acknowledged these rows: delete them (batched into a later commit, up to the
   * commit delay). Resolves once the deletes are committed (or the outbox closed; it never
   * rejects): until then a crash sends those messages again, so the bridge counts them in
   * its inflight window (forwarder.ts).
   */
  ack(bridge: string, seqs: readonly number[]): Promise<void>;
  stats(bridge: string): OutboxStats;
  /** Calls `listener` after each commit that added rows for `bridge`. Returns an unsubscribe. */
  watch(bridge: string, listener: () => void): () => void;
  /** Resolves when everything appended or acked so far is committed. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
