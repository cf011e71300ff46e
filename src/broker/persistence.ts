/**
 * The broker's side of persistence (issue 5): which sessions are written through, and
 * how the state a journal kept is put back at start-up. The journal itself (what is
 * stored, how, when it commits) is core/persistence.ts's StateJournal.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { StampMover } from '../core/clock-steps.js';
import type { Connection } from './connection.js';
import type { StateJournal, StoredSessionRecord, WillSpec } from '../core/persistence.js';
import { parseSharedFilter } from '../core/topic.js';
import type { BrokerOptions } from './options.js';
import type { RetainedStore } from './retained.js';
import { willDelayMs } from './session-lifecycle.js';
import type { Session } from './session.js';
import type { SubscriptionEntry } from './subscription-tree.js';

/** What restoreState put back with an earlier run's stamps: a step of the wall clock leaves them alone (moveStamps). */
export interface EarlierStamps {
  /** Restored queued, in-flight and retained messages, and Wills whose due time was stored. */
  objects: WeakSet<object>;
  /** Sessions restored offline, with the offlineAt stored. */
  offlineAt: WeakMap<Session, number>;
}

export function earlierStamps(): EarlierStamps {
  return { objects: new WeakSet(), offlineAt: new WeakMap() };
}

/**
 * Moves every stamp this run of the broker took by a step of the wall clock (Broker.clockStepped).
 * A session restored offline keeps its stored offlineAt and a restored Will its due time; their
 * timers, armed at the restart on the clock before the step, are armed again from `now`.
 */
export function moveStamps(
  mover: StampMover,
  b: { retained: RetainedStore; sessions: Iterable<Session>; connections: Iterable<Connection>; journal: StateJournal | undefined; earlier: EarlierStamps },
  now: number,
  arm: Pick<RestoreTarget, 'armExpiry' | 'armWill'>,
): void {
  mover.keep(b.earlier.objects);
  b.retained.clockStepped?.(mover);
  for (const s of b.sessions) {
    const earlier = s.offlineAt !== undefined && b.earlier.offlineAt.get(s) === s.offlineAt;
    s.clockStepped(mover, earlier);
    if (earlier && s.link === undefined && s.expiryTimer !== undefined) {
      s.expiryTimer.cancel();
      arm.armExpiry(s, Math.max(0, s.expiryInterval * 1000 - (now - s.offlineAt!)));
    }
    if (s.pendingWill !== undefined && b.earlier.objects.has(s.pendingWill)) arm.armWill(s, s.pendingWill);
  }
  for (const c of b.connections) c.clockStepped(mover.deltaMs);
  b.journal?.clockStepped?.(mover);
}

/** The session as stored: online (its client's Will held) or offline since session.offlineAt (a pending Will). */
export function sessionRecord(session: Session): StoredSessionRecord {
  const offlineAt = session.offlineAt;
  const will = offlineAt === undefined ? session.liveWill : session.pendingWill;
  return { clientId: session.clientId, protocolVersion: session.protocolVersion, expiryInterval: session.expiryInterval, offlineAt, will, user: session.user };
}

/**
 * A session is written through while its expiry is > 0 (3.1.1 clean session 0, or a v5
 * Session Expiry Interval > 0); one that becomes clean again (v5 CONNECT with expiry 0,
 * or DISCONNECT setting it to 0) leaves the store. `session.offlineAt` undefined = online now.
 */
export function writeThrough(journal: StateJournal, session: Session): void {
  if (!journal.persistSessions) return;
  if (session.expiryInterval === 0) {
    if (session.journal !== undefined) {
      session.journal = undefined;
      journal.deleteSession(session.clientId);
    }
    return;
  }
  journal.saveSession(sessionRecord(session));
  if (session.journal === undefined) {
    for (const e of session.subscriptions.values()) journal.saveSubscription(session.clientId, e);
    session.persistTo(journal);
  }
}

export interface RestoreTarget {
  options: BrokerOptions;
  clock: Clock;
  log: Logger;
  retained: RetainedStore;
  /** Creates and registers an (offline) session. */
  newSession(clientId: string): Session;
  addSubscription(session: Session, entry: SubscriptionEntry): boolean;
  armExpiry(session: Session, ms: number): void;
  /** Publishes `will` at its due time unless the client comes back first. */
  armWill(session: Session, will: WillSpec): void;
  /** Publishes `will` now. */
  publishWill(will: WillSpec): void;
  /** Grades the restored session's subscriptions with its user's ACL rights (read-guard.ts). */
  applyGrants(session: Session): void;
  /** Where the restored stamps of the earlier run are noted. */
  earlier: EarlierStamps;
}

/**
 * Puts back retained messages and persistent sessions: subscriptions into the routing
 * tree, queued and inflight messages (resent with DUP on reconnect [MQTT-4.4.0-1]), QoS 2
 * packet ids, and the expiry timer with what is left of the expiry after the downtime.
 */
export function restoreState(journal: StateJournal, t: RestoreTarget): void {
  const now = t.clock.now();
  const state = journal.restore(now, {
    maxQueuedMessages: t.options.maxQueuedMessages,
    maxQueuedBytes: t.options.maxQueuedBytes,
    maxSessionExpiry: t.options.maxSessionExpiry,
  });
  // A retained message set before the restore (a bridge's inbound side starts first) is newer.
  for (const m of state.retained) t.earlier.objects.add(m);
  for (const m of state.retained) if (t.retained.match(m.topic, now).length === 0) t.retained.set(m);
  let messages = 0;
  let wills = 0;
  for (const s of state.sessions) {
    const session = t.newSession(s.clientId);
    session.protocolVersion = s.protocolVersion;
    session.expiryInterval = s.expiryInterval;
    session.user = s.user;
    for (const sub of s.subscriptions) {
      const shared = parseSharedFilter(sub.filter);
      const group = shared !== null && typeof shared !== 'string' ? shared.group : undefined;
      t.addSubscription(session, { subscriber: session, ...sub, group });
    }
    // Until its client is back, what reaches it is what its user may read, as before the restart.
    t.applyGrants(session);
    session.restore(s.deliveries, s.qos2In);
    for (const d of s.deliveries) t.earlier.objects.add(d.msg);
    session.journal = journal; // after the subscriptions: they are stored already
    messages += s.deliveries.length;
    session.offlineAt = s.offlineAt ?? now;
    // Online at the crash: offline from `now`, this run's stamp (the journal stored it so).
    if (s.offlineAt !== undefined && s.offlineAt !== now) t.earlier.offlineAt.set(session, s.offlineAt);
    // Counted from when it went offline, the downtime included (0xFFFFFFFF is re-armed in steps like any long expiry).
    t.armExpiry(session, Math.max(0, s.expiryInterval * 1000 - (now - session.offlineAt)));
    if (s.will !== undefined) {
      // A Will pending at the crash keeps its due time. One held for a client connected at
      // the crash is owed as if its connection closed now [MQTT-3.1.2-8], but not before
      // 1.5 × its keepalive: a client that is alive reconnects first and so cancels it
      // [MQTT-3.1.3-9], rather than every device flapping to its Will after each restart.
      const will = { ...s.will, due: s.will.due ?? now + Math.max(willDelayMs(s.will, s.expiryInterval), s.will.keepalive * 1500) };
      if (s.will.due !== undefined) t.earlier.objects.add(will);
      t.armWill(session, will);
      wills++;
    }
  }
  // A session that expired while the gateway was down ended then: its Will is owed now,
  // after the persistent sessions above are back so that their subscribers receive it.
  for (const w of state.expiredWills) t.publishWill(w);
  const counts = {
    sessions: state.sessions.length,
    messages,
    wills,
    expiredWills: state.expiredWills.length,
    retained: state.retained.length,
    expiredSessions: state.expiredSessions,
    expiredMessages: state.expiredMessages,
    overCap: state.overCap,
  };
  if (state.overCap > 0) t.log.warn(counts, 'state restored; queued messages beyond the per-client caps were dropped');
  else t.log.info(counts, 'state restored');
}
