/**
 * The life of a session beyond one connection (§4.1, §3.1.2.4, §3.1.3.2): takeover by a new
 * connection, the Will (at once or after its Will Delay Interval), expiry after the
 * disconnect, and the end of a session. The broker owns the session table and the routing
 * tree; this is the one place that decides when a session starts, continues and ends.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Message } from '../core/message.js';
import { parseSharedFilter, topicMatches } from '../core/topic.js';
import type { WillSpec } from '../core/persistence.js';
import type { Connection } from './connection.js';
import type { OpenedSession } from './context.js';
import type { Session } from './session.js';

/** setTimeout's largest delay; longer expiries re-arm in steps. */
const MAX_TIMER_MS = 2_147_483_647;

export interface LifecycleHost {
  readonly sessions: Map<string, Session>;
  readonly clock: Clock;
  readonly log: Logger;
  /** True while the broker shuts down: sessions are then neither ended nor expired. */
  closing(): boolean;
  newSession(clientId: string): Session;
  /** Writes the session through to the store, if one is attached (offline since session.offlineAt). */
  persist(session: Session): void;
  removeSubscription(session: Session, filter: string): boolean;
  /** Delivers `msg` to one member of the shared subscription `filter` ($share/group/…); false when it has none left. */
  deliverShared(filter: string, msg: Message): boolean;
  publish(msg: Message): Promise<void> | undefined;
  /** Whether the ACL in force now lets the Will's client write its topic (checked at CONNECT, and again here: the ACL may have been reloaded since). */
  mayPublishWill(will: Pick<WillSpec, 'msg' | 'user'>): boolean;
}

/** How long a Will waits once its connection is gone: its Will Delay, cut short by the session's end (§3.1.3.2.2). */
export function willDelayMs(will: Pick<WillSpec, 'delay'>, expiryInterval: number): number {
  return Math.min(will.delay, expiryInterval) * 1000;
}

export class SessionLifecycle {
  constructor(private readonly host: LifecycleHost) {}

  /** CONNECT: the client's session, taken over from another connection, ended when it starts clean, or new. */
  open(conn: Connection, clientId: string, cleanStart: boolean, expiryInterval: number): OpenedSession {
    let session = this.host.sessions.get(clientId);
    if (session !== undefined) {
      const old = session.link as Connection | undefined;
      if (old !== undefined && old !== conn) {
        // Session takeover: the existing connection is closed [MQTT-3.1.4-3], with 0x8E for v5.
        old.log.info('session taken over by a new connection');
        const oldWill = old.will;
        old.session = undefined;
        session.detach();
        if (old.version === 5) old.sendDisconnect('session-taken-over');
        old.end();
        // The old connection ended without DISCONNECT: its Will applies, unless a delay
        // is pending and the session continues (MQTT 5 §3.1.3.2.2).
        if (oldWill !== undefined && (oldWill.delay === 0 || cleanStart)) this.publishWill(oldWill);
      }
      session.willTimer?.cancel();
      session.willTimer = undefined;
      session.expiryTimer?.cancel();
      session.expiryTimer = undefined;
      if (session.pendingWill !== undefined) {
        // A new connection for the session arrived before the Will Delay: no Will [MQTT-3.1.3-9],
        // unless this connection starts clean, which ends the old session.
        if (cleanStart) this.publishWill(session.pendingWill);
        session.pendingWill = undefined;
      }
      if (cleanStart) {
        this.end(session);
        session = undefined;
      }
    }
    const present = session !== undefined;
    if (session === undefined) {
      session = this.host.newSession(clientId);
      this.host.sessions.set(clientId, session);
    }
    session.expiryInterval = expiryInterval;
    session.protocolVersion = conn.version;
    session.user = conn.user; // stored with it: the ACL's subject after a restart
    // Stored with a persistent session: a restart while the client is connected owes it.
    session.liveWill = conn.will;
    session.offlineAt = undefined;
    this.host.persist(session);
    return { session, present };
  }

  /** A connection carrying `session` ended: its Will (now or after its delay), then the session's expiry. */
  closed(conn: Connection, session: Session): void {
    const will = conn.will;
    const now = this.host.clock.now();
    session.liveWill = undefined;
    session.offlineAt = now;
    if (will !== undefined && conn.shutdown) {
      // Cut off by our own shutdown: stored as a Will owed if the client does not come back
      // in time after the restart, exactly like one held at a crash (persistence.ts restore).
      session.pendingWill = will;
    } else if (will !== undefined && !conn.graceful) {
      if (will.delay > 0 && session.expiryInterval > 0) {
        // Will Delay Interval: published later, or when the session ends first (§3.1.3.2.2).
        this.armWill(session, { ...will, due: now + willDelayMs(will, session.expiryInterval) });
      } else {
        this.publishWill(will);
      }
    }
    // Its expiry counts from now, also across a restart; a session made clean at DISCONNECT
    // leaves the store. A pending Will is stored with it (due time included).
    this.host.persist(session);
    if (this.host.closing()) return;
    if (session.expiryInterval === 0) this.end(session);
    else this.armExpiry(session, session.expiryInterval * 1000);
  }


  /** `will` is published at will.due unless a connection for the session comes first (open cancels it). */
  armWill(session: Session, will: WillSpec): void {
    session.willTimer?.cancel();
    session.pendingWill = will;
    const ms = Math.max(0, (will.due ?? this.host.clock.now()) - this.host.clock.now());
    session.willTimer = this.host.clock.setTimeout(() => {
      session.willTimer = undefined;
      const w = session.pendingWill;
      session.pendingWill = undefined;
      if (w === undefined) return;
      this.publishWill(w);
      // Published: no longer stored with the (still offline) session.
      if (session.link === undefined && this.host.sessions.get(session.clientId) === session) this.host.persist(session);
    }, Math.min(ms, MAX_TIMER_MS));
  }

  armExpiry(session: Session, ms: number): void {
    session.expiryTimer = this.host.clock.setTimeout(() => {
      session.expiryTimer = undefined;
      if (ms > MAX_TIMER_MS) return this.armExpiry(session, ms - MAX_TIMER_MS);
      this.host.log.info({ clientId: session.clientId }, 'session expired');
      this.end(session);
    }, Math.min(ms, MAX_TIMER_MS));
  }

  /** Ends a session: subscriptions leave the tree, queued messages are dropped (counted). */
  end(session: Session): void {
    session.expiryTimer?.cancel();
    session.expiryTimer = undefined;
    if (session.pendingWill !== undefined) {
      session.willTimer?.cancel();
      session.willTimer = undefined;
      const w = session.pendingWill;
      session.pendingWill = undefined;
      this.publishWill(w);
    }
    // Its rows go in one statement each table, not row by row.
    session.journal?.deleteSession(session.clientId);
    session.journal = undefined;
    // What a shared subscription gave this session and its client never received goes to
    // another member of the group rather than being lost with it (MQTT 5 §4.8.2).
    const shared = [...session.subscriptions.values()].filter((e) => e.group !== undefined);
    const orphans = shared.length > 0 ? session.unreceived() : [];
    for (const filter of [...session.subscriptions.keys()]) this.host.removeSubscription(session, filter);
    let handedOver = 0;
    for (const msg of orphans) {
      let taken = false;
      for (const e of shared) {
        const inner = parseSharedFilter(e.filter);
        if (inner !== null && typeof inner !== 'string' && topicMatches(inner.filter, msg.topic) && this.host.deliverShared(e.filter, msg)) taken = true;
      }
      if (taken) handedOver++;
    }
    session.clearState(handedOver);
    if (this.host.sessions.get(session.clientId) === session) this.host.sessions.delete(session.clientId);
  }

  /** The Will as published now: its expiry counts from this moment (§3.1.3.2.4). */
  private willMessage(will: { msg: Message; expiry: number | undefined }): Message {
    const msg = { ...will.msg };
    if (will.expiry !== undefined) msg.expiresAt = this.host.clock.now() + will.expiry * 1000;
    return msg;
  }

  publishWill(will: Pick<WillSpec, 'msg' | 'expiry' | 'user'>): void {
    if (!this.host.mayPublishWill(will)) return;
    this.publishMessage(this.willMessage(will));
  }

  private publishMessage(msg: Message): void {
    this.host.log.debug({ topic: msg.topic, clientId: msg.origin.id }, 'publishing will');
    const wait = this.host.publish(msg);
    wait?.catch((err: unknown) => this.host.log.error({ err, topic: msg.topic }, 'will message not stored'));
  }
}
