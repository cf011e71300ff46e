/**
 * The SQL of persistent sessions and retained messages (tables of migration 2): the
 * prepared statements the journal's batches run inside a commit, and the read-back at
 * start-up. Rows are written one statement each; the journal batches them into the
 * outbox's group commits (state-journal.ts).
 */
import type { Message, QoS, SourceKind } from '../core/message.js';
import {
  CONSUMER_KEY_PREFIX,
  type DeliveryState,
  type RestoreLimits,
  type RestoredState,
  type StoredDelivery,
  type StoredSession,
  type StoredSessionRecord,
  type StoredSubscription,
  type WillSpec,
} from '../core/persistence.js';
import type { SqliteStatement, StoreDatabase } from './database.js';
import { decodeProperties, encodeProperties } from './record.js';

const STATES: readonly DeliveryState[] = ['queued', 'wait-ack', 'wait-rec', 'wait-comp'];
/** Session Expiry Interval meaning "never" (MQTT 5 §3.1.2.11.2). */
const NEVER = 0xffffffff;
/** Just above every in-process consumer key (they start with U+0000). */
const CONSUMER_KEY_END = '\u0001';

type Names =
  | 'saveSession' | 'delSession' | 'delSubs' | 'delDeliveries' | 'delQos2'
  | 'saveSub' | 'delSub' | 'addDelivery' | 'updDelivery' | 'rmDelivery'
  | 'addQos2' | 'rmQos2' | 'saveRetained' | 'delRetained' | 'maxDelivery';

export class StateSql {
  private s: Record<Names, SqliteStatement> | undefined;

  /** Sessions whose offline_at this run wrote, retained topics whose expires_at it wrote, deliveries before it (shiftStamps). */
  private readonly offlineThisRun = new Set<string>();
  private readonly expiringThisRun = new Set<string>();
  private deliveriesBefore: number | undefined;

  constructor(private readonly db: StoreDatabase) {}

  /** Compiled on first use: the constructor does no I/O. */
  private get st(): Record<Names, SqliteStatement> {
    return (this.s ??= prepare(this.db));
  }

  /**
   * A step of the wall clock (core/clock-steps.ts): the stamps this run stored move by `deltaMs`
   * (a pending Will's due time lives in its JSON); an earlier run's stay, its clock took them
   * (their age includes the time the gateway was off). Rare; runs inside the commit.
   */
  shiftStamps(deltaMs: number): void {
    const h = this.db.handle;
    const session = h.prepare('UPDATE sessions SET offline_at = offline_at + @d, ' +
      "will = CASE WHEN json_extract(will, '$.due') IS NULL THEN will ELSE json_set(will, '$.due', json_extract(will, '$.due') + @d) END " +
      'WHERE client_id = @id');
    for (const id of this.offlineThisRun) session.run({ d: deltaMs, id });
    h.prepare('UPDATE deliveries SET expires_at = expires_at + ? WHERE id > ? AND expires_at IS NOT NULL').run(deltaMs, this.deliveriesBefore ?? 0);
    const retained = h.prepare('UPDATE retained SET expires_at = expires_at + ? WHERE topic = ?');
    for (const topic of this.expiringThisRun) retained.run(deltaMs, topic);
  }

  maxDeliveryId(): number {
    return (this.st.maxDelivery.pluck().get() as number | null) ?? 0;
  }

  saveSession(r: StoredSessionRecord): void {
    if (r.offlineAt === undefined) this.offlineThisRun.delete(r.clientId);
    else this.offlineThisRun.add(r.clientId);
    this.st.saveSession.run(r.clientId, r.protocolVersion, r.expiryInterval, r.offlineAt ?? null, encodeWill(r.will), r.user ?? null);
  }

  deleteSession(clientId: string): void {
    this.offlineThisRun.delete(clientId);
    this.st.delSession.run(clientId);
    this.st.delSubs.run(clientId);
    this.st.delDeliveries.run(clientId);
    this.st.delQos2.run(clientId);
  }

  saveSubscription(clientId: string, s: StoredSubscription): void {
    const options = (s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0) | (s.retainHandling << 2);
    this.st.saveSub.run(clientId, s.filter, s.qos, options, s.subscriptionId ?? null);
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.st.delSub.run(clientId, filter);
  }

  addDelivery(clientId: string, d: StoredDelivery): void {
    const m = d.msg;
    this.st.addDelivery.run(
      d.id,
      clientId,
      m.topic,
      m.payload,
      m.qos,
      d.qos,
      (m.retain ? 1 : 0) | (d.retainFlag ? 2 : 0),
      encodeProperties(m.properties),
      m.expiresAt ?? null,
      m.origin.kind,
      m.origin.id,
      d.subIds === undefined ? null : d.subIds.join(','),
      d.packetId,
      STATES.indexOf(d.state),
    );
  }

  updateDelivery(id: number, packetId: number, state: DeliveryState): void {
    this.st.updDelivery.run(packetId, STATES.indexOf(state), id);
  }

  removeDelivery(id: number): void {
    this.st.rmDelivery.run(id);
  }

  addQos2(clientId: string, packetId: number): void {
    this.st.addQos2.run(clientId, packetId);
  }

  removeQos2(clientId: string, packetId: number): void {
    this.st.rmQos2.run(clientId, packetId);
  }

  /** Sets the retained message of its topic, or clears it (empty payload) [MQTT-3.3.1-10/-11]. */
  retain(m: Message): void {
    if (m.payload.length > 0 && m.expiresAt !== undefined) this.expiringThisRun.add(m.topic);
    else this.expiringThisRun.delete(m.topic);
    if (m.payload.length === 0) this.st.delRetained.run(m.topic);
    else this.st.saveRetained.run(m.topic, m.payload, m.qos, encodeProperties(m.properties), m.expiresAt ?? null, m.origin.kind, m.origin.id);
  }

  /**
   * Reads everything back in one transaction, deleting expired sessions (expiry counted
   * from offline_at; a session online at a crash counts from now) and expired or over-cap
   * messages. Queued messages are read in id order per session and only up to the caps,
   * so memory stays bounded by sessions × caps whatever the file holds.
   */
  restore(now: number, limits: RestoreLimits, wantSessions: boolean, wantRetained: boolean): RestoredState {
    const h = this.db.handle;
    this.deliveriesBefore ??= this.maxDeliveryId();
    const out: RestoredState = { sessions: [], retained: [], expiredSessions: 0, expiredWills: [], expiredMessages: 0, overCap: 0 };
    h.transaction(() => {
      if (wantRetained) this.restoreRetained(now, out);
      else h.exec('DELETE FROM retained');
      if (!wantSessions) {
        h.exec('DELETE FROM sessions; DELETE FROM subscriptions; DELETE FROM deliveries; DELETE FROM qos2_in');
        return;
      }
      // Rows without a session cannot be reached (deleteSession removes them together); drop any.
      // Deliveries of in-process consumers (keys from U+0000 up) are left to their owner.
      h.exec(
        'DELETE FROM subscriptions WHERE client_id NOT IN (SELECT client_id FROM sessions);' +
          'DELETE FROM qos2_in WHERE client_id NOT IN (SELECT client_id FROM sessions);',
      );
      h.prepare('DELETE FROM deliveries WHERE client_id NOT IN (SELECT client_id FROM sessions) AND NOT (client_id >= ? AND client_id < ?)').run(
        CONSUMER_KEY_PREFIX,
        CONSUMER_KEY_END,
      );
      const rows = h.prepare('SELECT client_id AS clientId, protocol, expiry, offline_at AS offlineAt, will, user FROM sessions').all() as Array<{
        clientId: string;
        protocol: number;
        expiry: number;
        offlineAt: number | null;
        will: string | null;
        user: string | null;
      }>;
      for (const r of rows) {
        const expiry = Math.min(r.expiry, limits.maxSessionExpiry);
        const offlineAt = r.offlineAt ?? now;
        const user = r.user ?? undefined;
        const will = decodeWill(r.will, r.clientId);
        if (will !== undefined) will.user = user;
        if (expiry !== NEVER && offlineAt + expiry * 1000 <= now) {
          if (will !== undefined) out.expiredWills.push(will);
          this.deleteSession(r.clientId);
          out.expiredSessions++;
          continue;
        }
        if (r.offlineAt === null) this.saveSession({ clientId: r.clientId, protocolVersion: r.protocol as 3 | 4 | 5, expiryInterval: expiry, offlineAt, will, user });
        out.sessions.push({ ...this.restoreSession(r.clientId, r.protocol as 3 | 4 | 5, expiry, offlineAt, now, limits, out), will, user });
      }
    }).immediate();
    return out;
  }

  private restoreRetained(now: number, out: RestoredState): void {
    const expired: string[] = [];
    for (const r of this.db.handle
      .prepare('SELECT topic, payload, qos, props, expires_at AS expiresAt, origin_kind AS originKind, origin_id AS originId FROM retained ORDER BY id')
      .iterate() as IterableIterator<{ topic: string; payload: Buffer; qos: number; props: string | null; expiresAt: number | null; originKind: string; originId: string }>) {
      if (r.expiresAt !== null && r.expiresAt <= now) {
        expired.push(r.topic);
        continue;
      }
      out.retained.push(message(r.topic, r.payload, r.qos, true, r.props, r.expiresAt, r.originKind, r.originId));
    }
    for (const t of expired) this.st.delRetained.run(t);
    out.expiredMessages += expired.length;
  }

  private restoreSession(
    clientId: string,
    protocolVersion: 3 | 4 | 5,
    expiryInterval: number,
    offlineAt: number,
    now: number,
    limits: RestoreLimits,
    out: RestoredState,
  ): StoredSession {
    const h = this.db.handle;
    const subscriptions = (
      h.prepare('SELECT filter, qos, options, sub_id AS subId FROM subscriptions WHERE client_id = ?').all(clientId) as Array<{
        filter: string;
        qos: number;
        options: number;
        subId: number | null;
      }>
    ).map((s) => ({
      filter: s.filter,
      qos: s.qos as QoS,
      noLocal: (s.options & 1) !== 0,
      retainAsPublished: (s.options & 2) !== 0,
      retainHandling: ((s.options >> 2) & 3) as 0 | 1 | 2,
      subscriptionId: s.subId ?? undefined,
    }));
    const deliveries = this.readDeliveries(clientId, now, limits, out);
    const qos2In = h.prepare('SELECT packet_id FROM qos2_in WHERE client_id = ?').pluck().all(clientId) as number[];
    return { clientId, protocolVersion, expiryInterval, offlineAt, subscriptions, deliveries, qos2In };
  }

  /**
   * The deliveries stored for an in-process consumer (`key` from CONSUMER_KEY_PREFIX on),
   * read back at its start like a session's: in id order, up to the caps, expired and
   * over-cap ones deleted.
   */
  restoreConsumer(key: string, now: number, limits: RestoreLimits): { deliveries: StoredDelivery[]; expiredMessages: number; overCap: number } {
    const out = { expiredMessages: 0, overCap: 0 };
    let deliveries: StoredDelivery[] = [];
    this.db.handle.transaction(() => void (deliveries = this.readDeliveries(key, now, limits, out))).immediate();
    return { deliveries, ...out };
  }

  /** Keys from `prefix` on (which starts with CONSUMER_KEY_PREFIX) that have deliveries stored. */
  consumerKeys(prefix: string): string[] {
    return this.db.handle
      .prepare('SELECT DISTINCT client_id FROM deliveries WHERE client_id >= ? AND client_id < ?')
      .pluck()
      .all(prefix, CONSUMER_KEY_END)
      .filter((k) => (k as string).startsWith(prefix)) as string[];
  }

  /** A key's deliveries in id order, up to the caps; expired and over-cap ones are deleted (and counted in `out`). */
  private readDeliveries(clientId: string, now: number, limits: RestoreLimits, out: Pick<RestoredState, 'expiredMessages' | 'overCap'>): StoredDelivery[] {
    const h = this.db.handle;
    const deliveries: StoredDelivery[] = [];
    const drop: number[] = [];
    let queued = 0;
    let queuedBytes = 0;
    const it = h
      .prepare(
        'SELECT id, topic, payload, msg_qos AS msgQos, qos, flags, props, expires_at AS expiresAt, origin_kind AS originKind, ' +
          'origin_id AS originId, sub_ids AS subIds, packet_id AS packetId, state FROM deliveries WHERE client_id = ? ORDER BY id',
      )
      .iterate(clientId) as IterableIterator<DeliveryRow>;
    for (const r of it) {
      const state = STATES[r.state] ?? 'queued';
      // Expiry deletes a copy whose delivery has not started [MQTT-3.3.2-5]. One in flight
      // (PUBLISH sent, or PUBREL owed) is resent whatever its age [MQTT-4.4.0-1]; dropping it
      // would free a QoS 2 packet id the client may still hold.
      if (state === 'queued' && r.expiresAt !== null && r.expiresAt <= now) {
        drop.push(r.id);
        out.expiredMessages++;
        continue;
      }
      if (state === 'queued') {
        const size = r.payload.length + r.topic.length;
        if (queued >= limits.maxQueuedMessages || queuedBytes + size > limits.maxQueuedBytes) {
          drop.push(r.id);
          out.overCap++;
          continue;
        }
        queued++;
        queuedBytes += size;
      }
      deliveries.push({
        id: r.id,
        msg: message(r.topic, r.payload, r.msgQos, (r.flags & 1) !== 0, r.props, r.expiresAt, r.originKind, r.originId),
        qos: r.qos as 1 | 2,
        retainFlag: (r.flags & 2) !== 0,
        subIds: r.subIds === null ? undefined : r.subIds.split(',').map(Number),
        packetId: r.packetId,
        state,
      });
    }
    for (const id of drop) this.st.rmDelivery.run(id);
    return deliveries;
  }
}

interface DeliveryRow {
  id: number;
  topic: string;
  payload: Buffer;
  msgQos: number;
  qos: number;
  flags: number;
  props: string | null;
  expiresAt: number | null;
  originKind: string;
  originId: string;
  subIds: string | null;
  packetId: number;
  state: number;
}

function message(
  topic: string,
  payload: Buffer,
  qos: number,
  retain: boolean,
  props: string | null,
  expiresAt: number | null,
  originKind: string,
  originId: string,
): Message {
  const m: Message = { topic, payload, qos: qos as QoS, retain, origin: { kind: originKind as SourceKind, id: originId } };
  const p = decodeProperties(props);
  if (p !== undefined) m.properties = p;
  if (expiresAt !== null) m.expiresAt = expiresAt;
  return m;
}

/** A Will as stored with its session (migration 6); its origin is the session's client. */
function encodeWill(w: WillSpec | undefined): string | null {
  if (w === undefined) return null;
  const m = w.msg;
  return JSON.stringify({
    topic: m.topic,
    payload: m.payload.toString('base64'),
    qos: m.qos,
    retain: m.retain,
    props: encodeProperties(m.properties),
    delay: w.delay,
    expiry: w.expiry ?? null,
    keepalive: w.keepalive,
    due: w.due ?? null,
  });
}

/** A damaged Will is left out (the session itself is restored). */
function decodeWill(text: string | null, clientId: string): WillSpec | undefined {
  if (text === null) return undefined;
  try {
    const o = JSON.parse(text) as { topic: string; payload: string; qos: number; retain: boolean; props: string | null; delay: number; expiry: number | null; keepalive: number; due: number | null };
    if (typeof o.topic !== 'string' || typeof o.payload !== 'string' || ![0, 1, 2].includes(o.qos)) return undefined;
    const msg = message(o.topic, Buffer.from(o.payload, 'base64'), o.qos, o.retain === true, o.props ?? null, null, 'mqtt', clientId);
    const w: WillSpec = { msg, delay: Number(o.delay) || 0, expiry: o.expiry ?? undefined, keepalive: Number(o.keepalive) || 0 };
    if (typeof o.due === 'number') w.due = o.due;
    return w;
  } catch {
    return undefined;
  }
}

function prepare(db: StoreDatabase): Record<Names, SqliteStatement> {
  const h = db.handle;
  return {
    saveSession: h.prepare(
      'INSERT INTO sessions (client_id, protocol, expiry, offline_at, will, user) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (client_id) DO UPDATE SET protocol = excluded.protocol, expiry = excluded.expiry, offline_at = excluded.offline_at, will = excluded.will, user = excluded.user',
    ),
    delSession: h.prepare('DELETE FROM sessions WHERE client_id = ?'),
    delSubs: h.prepare('DELETE FROM subscriptions WHERE client_id = ?'),
    delDeliveries: h.prepare('DELETE FROM deliveries WHERE client_id = ?'),
    delQos2: h.prepare('DELETE FROM qos2_in WHERE client_id = ?'),
    saveSub: h.prepare(
      'INSERT INTO subscriptions (client_id, filter, qos, options, sub_id) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (client_id, filter) DO UPDATE SET qos = excluded.qos, options = excluded.options, sub_id = excluded.sub_id',
    ),
    delSub: h.prepare('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
    addDelivery: h.prepare(
      'INSERT INTO deliveries (id, client_id, topic, payload, msg_qos, qos, flags, props, expires_at, origin_kind, origin_id, sub_ids, packet_id, state) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    updDelivery: h.prepare('UPDATE deliveries SET packet_id = ?, state = ? WHERE id = ?'),
    rmDelivery: h.prepare('DELETE FROM deliveries WHERE id = ?'),
    addQos2: h.prepare('INSERT OR IGNORE INTO qos2_in (client_id, packet_id) VALUES (?, ?)'),
    rmQos2: h.prepare('DELETE FROM qos2_in WHERE client_id = ? AND packet_id = ?'),
    saveRetained: h.prepare(
      'INSERT INTO retained (topic, payload, qos, props, expires_at, origin_kind, origin_id) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, props = excluded.props, ' +
        'expires_at = excluded.expires_at, origin_kind = excluded.origin_kind, origin_id = excluded.origin_id',
    ),
    delRetained: h.prepare('DELETE FROM retained WHERE topic = ?'),
    maxDelivery: h.prepare('SELECT max(id) FROM deliveries'),
  };
}
