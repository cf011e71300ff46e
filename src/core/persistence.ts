/**
 * What the broker writes through to durable storage so that persistent sessions and
 * retained messages survive a restart (issue 5), and what it reads back at start-up.
 * The broker depends on this interface; the SQLite store implements it
 * (src/store/state-journal.ts). Writes are recorded, not executed: they go into the next
 * group commit, and `committed()` is the promise an acknowledgement waits for.
 */
import type { StampMover } from './clock-steps.js';
import type { Message, Origin, QoS } from './message.js';

/**
 * Deliveries may also be kept for in-process consumers (the buffered messages of a
 * persistent MQTT-SN session), under keys that start with U+0000, which no MQTT client id
 * can contain [MQTT-1.5.4-2]. The broker's restore leaves those rows to their owner.
 */
export const CONSUMER_KEY_PREFIX = '\u0000';

/** Where an outgoing QoS 1/2 message of a session stands. */
export type DeliveryState = 'queued' | 'wait-ack' | 'wait-rec' | 'wait-comp';

export interface StoredSubscription {
  /** As subscribed, $share prefix included. */
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId: number | undefined;
}

/** A QoS 1/2 message for a session: queued, or inflight under a packet id. */
export interface StoredDelivery {
  /** Row id, chosen by the journal (nextDeliveryId); order of ids = order of delivery. */
  id: number;
  msg: Message;
  qos: 1 | 2;
  /** The RETAIN flag it is sent with. */
  retainFlag: boolean;
  subIds: readonly number[] | undefined;
  /** 0 while queued. */
  packetId: number;
  state: DeliveryState;
}

/** A Will (§3.1.3.2) as the broker keeps it with a connection, and with a persistent session. */
export interface WillSpec {
  msg: Message;
  /** Will Delay Interval, seconds (0 for 3.1.1). */
  delay: number;
  /** Message Expiry Interval, seconds; it starts when the Will is published (§3.1.3.2.4). */
  expiry: number | undefined;
  /** The Keep Alive of the connection it came with, seconds. */
  keepalive: number;
  /** Clock ms it is due once its connection is gone (its Will Delay runs); undefined while connected. */
  due?: number;
  /** The verified user name of its client (stored as the session's): the ACL is asked again when it is published. */
  user?: string | undefined;
}

export interface StoredSessionRecord {
  clientId: string;
  protocolVersion: 3 | 4 | 5;
  /** Seconds (0xFFFFFFFF = never). */
  expiryInterval: number;
  /** Clock ms when its connection closed; undefined while it is (or was, at a crash) online. */
  offlineAt: number | undefined;
  /** The Will held for its connected client, or pending after the connection closed. */
  will?: WillSpec | undefined;
  /** The verified user name it was opened with: with the client id, whom the ACL asks about after a restart. */
  user?: string | undefined;
}

export interface StoredSession extends StoredSessionRecord {
  subscriptions: StoredSubscription[];
  /** In id order. */
  deliveries: StoredDelivery[];
  /** Incoming QoS 2 packet ids between PUBREC and PUBREL [MQTT-4.3.3-9]. */
  qos2In: number[];
}

export interface RestoreLimits {
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  /** Seconds; a stored expiry above the current cap is lowered to it. */
  maxSessionExpiry: number;
}

export interface RestoredState {
  sessions: StoredSession[];
  retained: Message[];
  /** Sessions whose expiry passed while the gateway was down (their rows are deleted). */
  expiredSessions: number;
  /**
   * The Wills those sessions held: owed at once, since a session's end publishes its Will
   * whatever is left of the Will Delay [MQTT-3.1.2-8].
   */
  expiredWills: WillSpec[];
  /** Queued or retained messages whose Message Expiry passed (deleted). */
  expiredMessages: number;
  /** Queued messages beyond the per-session caps (deleted). */
  overCap: number;
}

export interface StateJournal {
  readonly persistSessions: boolean;
  readonly persistRetained: boolean;
  /** Grows with every recorded write: the broker compares it around a publish. */
  readonly writes: number;
  /**
   * Settles when everything recorded so far is committed (rejects if that commit failed).
   * `origin` is the publisher that waits for it (a PUBACK), so the commit pacer can tell a
   * publisher waiting on each acknowledgement from one that is not; without it the commit
   * comes within the commit window (a SUBACK, a QoS 2 packet id). A failure nobody awaits
   * is not an unhandled rejection (the broker may stop waiting when another wait failed first).
   */
  committed(origin?: Origin): Promise<void>;
  nextDeliveryId(): number;
  /** Sets or (empty payload) clears the retained message of msg.topic. */
  retain(msg: Message): void;
  saveSession(rec: StoredSessionRecord): void;
  /** Deletes the session with its subscriptions, deliveries and QoS 2 ids. */
  deleteSession(clientId: string): void;
  saveSubscription(clientId: string, sub: StoredSubscription): void;
  deleteSubscription(clientId: string, filter: string): void;
  /** Keeps `d` itself until the commit: the caller hands it over and changes it no more. */
  addDelivery(clientId: string, d: StoredDelivery): void;
  updateDelivery(id: number, packetId: number, state: DeliveryState): void;
  removeDelivery(id: number): void;
  addQos2(clientId: string, packetId: number): void;
  removeQos2(clientId: string, packetId: number): void;
  /** Reads everything back at start-up, deleting what expired (now: clock ms). */
  restore(now: number, limits: RestoreLimits): RestoredState;
  /**
   * The wall clock stepped (core/clock-steps.ts): the stamps stored so far (offline_at,
   * expires_at, a pending Will's due time) and those of the pending writes move with it.
   */
  clockStepped?(mover: StampMover): void;
}
