/**
 * The stored persistent MQTT-SN sessions brought back at start as "disconnected", with
 * their subscriptions on the bus, topic ids, Will and buffered messages (persistence.ts says
 * what is stored and why).
 */
import type { Logger } from 'pino';
import type { Authorizer } from '../core/authorizer.js';
import type { Clock } from '../core/clock.js';
import type { QoS } from '../core/message.js';
import type { MqttsnConfig } from '../config/mqttsn-schema.js';
import { snapshot, type SnQueueStore, type SnSessionStore } from './persistence.js';
import { SnSession } from './session.js';
import { GRACE } from './supervision.js';

/** What of the gateway a restore uses. */
export interface RestoreHost {
  readonly config: MqttsnConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly authorizer: Authorizer;
  readonly byId: Map<string, SnSession>;
  readonly maxBuffered: number;
  subscribe(s: SnSession, filter: string, qos: QoS, checkRead: boolean, retained: boolean): void;
  armTimer(s: SnSession): void;
}

export function restoreSessions(g: RestoreHost, store: SnSessionStore, queueStore: SnQueueStore | undefined): void {
  let records;
  try {
    records = store.load();
    queueStore?.prune(new Set(records.keys()));
  } catch (err) {
    g.log.error({ err }, 'stored mqtt-sn sessions could not be read; sensors start afresh');
    return;
  }
  const expiry = g.clock.now() + g.config.session_expiry;
  let buffered = 0;
  for (const [clientId, rec] of records) {
    if (g.byId.has(clientId)) continue;
    if (g.byId.size >= g.config.max_clients) {
      store.delete(clientId);
      queueStore?.clear(clientId);
      continue;
    }
    const s = new SnSession(clientId, g.config.max_topics_per_client);
    s.cleanSession = false;
    if (rec.will !== undefined) s.will = { ...rec.will, payload: Buffer.from(rec.will.payload, 'base64') };
    s.keepaliveMs = (rec.ka ?? 0) * 1000;
    s.sleepMs = s.savedSleepMs = (rec.sleep ?? 0) * 1000;
    s.ended = rec.ended ?? true;
    // Connected or asleep when the gateway went down: it must come back as supervision
    // would have required, or its Will is owed (persistence.ts). Until then its session
    // does not expire either: a sleeper may be due back later than mqttsn.session_expiry.
    const period = Math.max(s.keepaliveMs, s.sleepMs);
    const dueBack = !s.ended && period > 0 ? g.clock.now() + period * GRACE : undefined;
    if (s.will !== undefined) s.willDeadline = dueBack;
    s.topics.restore(rec.topics);
    g.byId.set(clientId, s);
    // Messages buffered before the restart go first, in order (before anything routed now).
    for (const q of loadQueue(g, queueStore, clientId)) s.queue.push({ msg: q.msg, qos: q.qos, rowId: q.rowId });
    buffered += s.queue.length;
    for (const [filter, qos] of rec.subs) {
      // The ACL as it is now: a filter it no longer grants is not subscribed again.
      const access = g.authorizer.grantsFor(s.origin).readAccess(filter);
      if (access === 'none') continue;
      try {
        g.subscribe(s, filter, qos, access === 'some', false);
      } catch (err) {
        g.log.warn({ err, clientId, filter }, 'stored mqtt-sn subscription not restored');
      }
    }
    s.expiryDeadline = Math.max(expiry, dueBack ?? 0);
    // As stored (a filter the ACL now refuses stays in the record until the next change):
    // a restart writes nothing.
    s.saved = snapshot(s);
    g.armTimer(s);
  }
  if (records.size > 0) g.log.info({ sessions: g.byId.size, buffered }, 'persistent mqtt-sn sessions restored');
}

function loadQueue(g: RestoreHost, queueStore: SnQueueStore | undefined, clientId: string): ReturnType<SnQueueStore['load']> {
  try {
    return queueStore?.load(clientId, g.maxBuffered) ?? [];
  } catch (err) {
    g.log.error({ err, clientId }, 'stored mqtt-sn buffered messages could not be read');
    return [];
  }
}
