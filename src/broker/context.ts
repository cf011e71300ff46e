/**
 * What connections and handlers may ask of the broker. Defined as an interface so the
 * handler files depend on a capability, not on the Broker class.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Message, Origin } from '../core/message.js';
import type { BrokerOptions } from './options.js';
import type { BrokerMetrics } from './metrics.js';
import type { Session } from './session.js';
import type { SubscriptionEntry } from './subscription-tree.js';
import type { Connection } from './connection.js';
import type { AccessControl } from '../auth/access-control.js';
import type { VerifyQueue } from './verify-queue.js';

export interface OpenedSession {
  session: Session;
  present: boolean;
  /** Set when opening discarded a stored session: CONNACK waits for this commit [MQTT-3.1.2-4]. */
  stored?: Promise<void>;
}

export interface BrokerContext {
  readonly options: BrokerOptions;
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics: BrokerMetrics;
  /** Password file and ACL in force now (replaced whole on reload). */
  readonly access: AccessControl;
  /** Bounds the password verifications running at once. */
  readonly verifyQueue: VerifyQueue;
  /** Subscribers the publish being routed right now reaches (encode once when > 1). */
  readonly routeFanout: number;
  /** Rate-limited warning about one client, keyed by what went wrong. */
  warn(conn: Connection, key: string, detail: string): void;
  scheduleFlush(conn: Connection): void;
  connectionClosed(conn: Connection): void;
  /** The client left between opening its session and CONNACK: the session goes on as if its connection had closed. */
  abandonSession(conn: Connection, session: Session): void;
  /** True while `session` is the client's and no connection carries it. */
  isVacant(session: Session): boolean;
  /** Finds, takes over or creates the session for a client id (§3.1.4 steps 3-4). */
  openSession(conn: Connection, clientId: string, cleanStart: boolean, expiryInterval: number): OpenedSession;
  /** Routes a client's PUBLISH; a promise means the ack must wait for durable sinks. */
  publish(msg: Message): Promise<void> | undefined;
  /** Adds a subscription to the routing tree; true when it did not exist before. */
  addSubscription(session: Session, entry: SubscriptionEntry): boolean;
  removeSubscription(session: Session, filter: string): boolean;
  retainedFor(filter: string): Message[];
  newClientId(): string;
}
