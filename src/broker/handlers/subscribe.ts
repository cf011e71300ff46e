/**
 * SUBSCRIBE → SUBACK (§3.8, §3.9). Each filter gets its own result; retained messages
 * follow the SUBACK according to Retain Handling [MQTT-3.3.1-9/-10/-11].
 */
import type { ISubscribePacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { parseSharedFilter, validateTopicFilter } from '../../core/topic.js';
import type { QoS } from '../../core/message.js';
import type { SubscriptionEntry } from '../subscription-tree.js';
import type { Session } from '../session.js';
import { badlyEncoded } from './wire-strings.js';
import { v3SubackCode, v5SubackCode, type Outcome } from '../reason-codes.js';
import { ReadGuard } from '../read-guard.js';


export function handleSubscribe(conn: Connection, p: ISubscribePacket, raw: Buffer): Violation | undefined {
  const ctx = conn.ctx;
  const session = conn.session!;
  const v5 = conn.version === 5;
  const subId = v5 ? p.properties?.subscriptionIdentifier : undefined;
  // Subscription Identifier 0 is a protocol error (§3.8.2.1.2).
  if (subId === 0) return { outcome: 'protocol-error', detail: 'Subscription Identifier of 0' };
  if (p.subscriptions.length === 0) return { outcome: 'protocol-error', detail: 'SUBSCRIBE without filters [MQTT-3.8.3-3]' };
  // A non-zero Packet Identifier [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]).
  if (!p.messageId) return { outcome: 'protocol-error', detail: 'SUBSCRIBE with packet id 0' };
  // Checked before any filter is added: a malformed SUBSCRIBE changes nothing.
  for (const s of p.subscriptions) {
    if (badlyEncoded(s.topic, raw)) return { outcome: 'malformed-packet', detail: 'SUBSCRIBE filter: ill-formed UTF-8 or U+0000' };
    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
    if (v5 && s.nl && s.topic.startsWith('$share/')) return { outcome: 'protocol-error', detail: 'No Local set on a shared subscription' };
  }

  const journal = session.journal;
  const writes = journal?.writes ?? 0;
  const granted: number[] = [];
  let guard: ReadGuard | undefined;
  const retainedToSend: { entry: SubscriptionEntry; isNew: boolean }[] = [];
  for (const s of p.subscriptions) {
    let outcome: Outcome = 'success';
    const shared = parseSharedFilter(s.topic);
    let group: string | undefined;
    let inner = s.topic;
    if (typeof shared === 'string') outcome = 'topic-filter-invalid';
    else if (shared !== null) {
      group = shared.group;
      inner = shared.filter;
    } else {
      const check = validateTopicFilter(s.topic, ctx.options.maxTopicLevels);
      if (!check.ok) outcome = 'topic-filter-invalid';
    }
    const qos = s.qos as QoS;
    // Read access: all topics of the filter (no check per message), some (each message
    // checked at delivery), or none (refused: 0x80 in 3.1.1 [MQTT-3.9.3-2], 0x87 in v5).
    const access = outcome === 'success' ? conn.grants.readAccess(inner) : 'all';
    if (access === 'none') {
      ctx.metrics.denial('subscribe');
      ctx.warn(conn, 'subscribe-denied', `subscription to "${s.topic}" denied by the ACL`);
      granted.push(v5 ? v5SubackCode('not-authorized', 0) : v3SubackCode('not-authorized', 0));
      continue;
    }
    if (outcome !== 'success') {
      ctx.warn(conn, 'subscribe-invalid', `subscription to "${s.topic}" refused: ${outcome}`);
      granted.push(v5 ? v5SubackCode(outcome, 0) : v3SubackCode(outcome, 0));
      continue;
    }
    const entry: SubscriptionEntry = {
      subscriber: session,
      filter: s.topic,
      qos,
      noLocal: v5 ? s.nl === true : false,
      retainAsPublished: v5 ? s.rap === true : false,
      retainHandling: v5 ? ((s.rh ?? 0) as 0 | 1 | 2) : 0,
      subscriptionId: subId,
      group,
    };
    if (access === 'some') entry.readGuard = (guard ??= new ReadGuard(conn.grants));
    const isNew = ctx.addSubscription(session, entry);
    granted.push(qos);
    // Shared subscriptions get no retained messages on subscribe (MQTT 5 §4.8.2).
    if (group === undefined) retainedToSend.push({ entry, isNew });
  }

  const suback = () => void conn.send({ cmd: 'suback', messageId: p.messageId ?? 0, granted });
  // A persistent session's subscriptions are stored before SUBACK (persist before you acknowledge).
  if (journal !== undefined && journal.writes !== writes) {
    // The subscription routes live messages from now on, and the SUBACK waits for the commit:
    // the retained messages go now, ahead of any message published meanwhile. Sent after the
    // commit, a stale retained value would reach the client after a newer live one on its
    // topic [MQTT-4.6.0-5] and be taken for the current state. PUBLISHes may precede the
    // SUBACK (§3.8.4).
    sendRetained(conn, session, retainedToSend);
    afterCommit(conn, journal.committed(), 'subscription', suback);
  } else {
    suback();
    sendRetained(conn, session, retainedToSend);
  }
  return undefined;
}

/**
 * Runs `answer` once `stored` committed; if the commit failed the connection is closed
 * without the answer, so the client sends the packet again after reconnecting.
 */
export function afterCommit(conn: Connection, stored: Promise<void>, what: string, answer: () => void): void {
  stored.then(answer, (err: unknown) => {
    conn.log.warn({ err: String(err) }, `${what} not stored; closing so the client sends it again`);
    conn.end();
  });
}

function sendRetained(conn: Connection, session: Session, retainedToSend: { entry: SubscriptionEntry; isNew: boolean }[]): void {
  const ctx = conn.ctx;
  for (const { entry, isNew } of retainedToSend) {
    if (entry.retainHandling === 2 || (entry.retainHandling === 1 && !isNew)) continue;
    const now = ctx.clock.now();
    for (const msg of ctx.retainedFor(entry.filter)) {
      if (msg.expiresAt !== undefined && msg.expiresAt <= now) continue;
      if (entry.readGuard !== undefined && !entry.readGuard.canRead(msg.topic)) continue;
      const qos = Math.min(msg.qos, entry.qos) as QoS;
      // Retained messages sent because of a new subscription keep RETAIN=1 [MQTT-3.3.1-8].
      session.deliver(msg, qos, true, entry.subscriptionId !== undefined ? [entry.subscriptionId] : undefined);
    }
  }
}
