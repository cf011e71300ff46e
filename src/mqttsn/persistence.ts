/**
 * What of a persistent MQTT-SN session (CleanSession=0) survives a restart of the gateway.
 *
 * MQTT-SN's CONNACK has no "session present" flag, so a sensor that connected once with
 * CleanSession=0 trusts its subscriptions and topic ids to last: after a power cut of the
 * gateway it would never learn that they were gone, and a sleeping sensor subscribed to
 * its commands would stop receiving them without a sign. So each persistent session's
 * durable part is stored and restored at start:
 *
 *   saved when it changes: CONNECT (its Will), WILLTOPICUPD/WILLMSGUPD,
 *   SUBSCRIBE/UNSUBSCRIBE, REGISTER/REGACK (topic ids the client knows); deleted when the
 *   session ends (clean CONNECT, expiry, eviction). The gateway's answer to a change
 *   (CONNACK, WILL…RESP, REGACK, SUBACK, UNSUBACK) goes out once it is committed.
 *
 *   restored as "disconnected": its subscriptions are on the bus again at once, so what is
 *   published meanwhile is buffered for it (up to mqttsn.max_buffered_messages); the next
 *   PINGREQ or PUBLISH from the sensor gets a DISCONNECT (§6.14: it must CONNECT again),
 *   and its CONNECT with CleanSession=0 finds everything as it was, buffered messages
 *   included. The session expires after mqttsn.session_expiry from the restart.
 *
 *   buffered QoS 1/2 messages (SnQueueStore): kept from the moment they are buffered until
 *   the sensor acknowledged them (or they were dropped), in the broker's session journal,
 *   so the publisher's PUBACK waits for their commit as for a persistent MQTT session.
 *   After a restart they go out first, in order, once the sensor connects again (one that
 *   was in flight at the crash is sent again: a duplicate at most, never a loss).
 *
 *   the Will a client that never comes back owes: the record holds its Keep Alive and
 *   sleep Duration and whether its connection ended owing no Will (a DISCONNECT, or a loss
 *   whose Will went out). A client restored owing its Will must CONNECT again within 1.5×
 *   the longer of the two from the restart, as supervision would have required of it had
 *   the gateway stayed up; otherwise it is lost and its Will is published (once: the loss
 *   is stored). These change on a DISCONNECT, a loss, or a new Keep Alive or Duration, not
 *   with the readings of a sleeping sensor.
 *
 * Not stored: the client's state (awake, asleep…) and address, which change with every
 * reading of a sleeping sensor and would cost a write each (flash wear) and which its next
 * CONNECT and DISCONNECT set anew; buffered QoS 0 messages; the MsgIds of QoS 2 publishes
 * in progress.
 */
import type { Message, QoS } from '../core/message.js';
import type { SnQoS } from './packets.js';
import type { SnSession } from './session.js';
import type { TopicEntry } from './topic-registry.js';

export interface SnSessionRecord {
  will?: { topic: string | undefined; qos: SnQoS; retain: boolean; payload: string };
  /** Keep Alive of its last CONNECT and Duration of its last sleep, in seconds (0: none). */
  ka?: number;
  sleep?: number;
  /** Its connection ended owing no Will (SnSession.ended); absent in records of earlier versions. */
  ended?: boolean;
  /** [filter, QoS] */
  subs: Array<[string, QoS]>;
  /** [id, name, whether the client knows the id] */
  topics: TopicEntry[];
}

/** Where persistent sessions are kept; writes may be deferred to the next commit of the store. */
export interface SnSessionStore {
  /** Every stored session by client id; unreadable records are left out. */
  load(): Map<string, SnSessionRecord>;
  save(clientId: string, record: string): void;
  delete(clientId: string): void;
  /**
   * Settles once the client's last save or delete is on the disk (rejects if that failed);
   * undefined when nothing of the client's is waiting. The acknowledgement of a change
   * (REGACK, SUBACK, CONNACK…) waits for it: persist before you acknowledge.
   */
  committed(clientId: string): Promise<void> | undefined;
}

/** A buffered message as stored: its row, the message and the QoS it goes out with. */
export interface StoredItem {
  rowId: number;
  msg: Message;
  qos: 1 | 2;
}

/**
 * The buffered QoS 1/2 messages of persistent sessions. Writes ride in the next commit;
 * `add` during a publish's routing makes that publisher's acknowledgement wait for it.
 */
export interface SnQueueStore {
  /** Stores a message buffered for the client; returns its row id. */
  add(clientId: string, msg: Message, qos: 1 | 2): number;
  /** The message left the buffer for good: acknowledged, or dropped. */
  remove(rowId: number): void;
  /** Every stored message of the client (its session ended). */
  clear(clientId: string): void;
  /** At start: the client's messages in order, the first `max` of them (the rest deleted). */
  load(clientId: string, max: number): StoredItem[];
  /** At start: deletes the messages of clients that have no stored session. */
  prune(keep: ReadonlySet<string>): void;
}

/** Kept in memory only: for tests of a gateway restarted on the same store. */
export class MemorySnQueue implements SnQueueStore {
  readonly rows = new Map<number, { clientId: string; msg: Message; qos: 1 | 2 }>();
  private lastId = 0;

  add(clientId: string, msg: Message, qos: 1 | 2): number {
    this.rows.set(++this.lastId, { clientId, msg, qos });
    return this.lastId;
  }

  remove(rowId: number): void {
    this.rows.delete(rowId);
  }

  clear(clientId: string): void {
    for (const [id, r] of this.rows) if (r.clientId === clientId) this.rows.delete(id);
  }

  load(clientId: string, max: number): StoredItem[] {
    const mine = [...this.rows].filter(([, r]) => r.clientId === clientId);
    for (const [id] of mine.slice(max)) this.rows.delete(id);
    return mine.slice(0, max).map(([rowId, r]) => ({ rowId, msg: r.msg, qos: r.qos }));
  }

  prune(keep: ReadonlySet<string>): void {
    for (const [id, r] of this.rows) if (!keep.has(r.clientId)) this.rows.delete(id);
  }
}

/** Kept in memory only: for tests of a gateway restarted on the same store. */
export class MemorySnSessionStore implements SnSessionStore {
  readonly records = new Map<string, string>();

  load(): Map<string, SnSessionRecord> {
    return parseRecords(this.records);
  }

  save(clientId: string, record: string): void {
    this.records.set(clientId, record);
  }

  delete(clientId: string): void {
    this.records.delete(clientId);
  }

  committed(): undefined {
    return undefined;
  }
}

/** The session's durable part as stored text (JSON). */
export function snapshot(s: SnSession): string {
  const w = s.will;
  const rec: SnSessionRecord = {
    ...(w === undefined ? {} : { will: { topic: w.topic, qos: w.qos, retain: w.retain, payload: w.payload.toString('base64') } }),
    subs: [...(s.subQos ?? [])],
    topics: s.topics.entries(),
    ka: s.keepaliveMs / 1000,
    sleep: s.sleepMs / 1000,
    ended: s.ended,
  };
  return JSON.stringify(rec);
}

/** Records by client id from stored texts; a damaged one is skipped (that sensor starts afresh). */
export function parseRecords(texts: Iterable<[string, string]>): Map<string, SnSessionRecord> {
  const out = new Map<string, SnSessionRecord>();
  for (const [clientId, text] of texts) {
    const rec = parseRecord(text);
    if (rec !== undefined) out.set(clientId, rec);
  }
  return out;
}

function parseRecord(text: string): SnSessionRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<SnSessionRecord>;
    if (typeof v !== 'object' || v === null || !Array.isArray(v.subs) || !Array.isArray(v.topics)) return undefined;
    const subs = v.subs.filter((e): e is [string, QoS] => Array.isArray(e) && typeof e[0] === 'string' && (e[1] === 0 || e[1] === 1 || e[1] === 2));
    const topics = v.topics.filter(
      (e): e is TopicEntry => Array.isArray(e) && Number.isInteger(e[0]) && e[0] >= 1 && e[0] <= 0xfffe && typeof e[1] === 'string' && typeof e[2] === 'boolean',
    ).map((e): TopicEntry => (e[3] === true ? [e[0], e[1], e[2], true] : [e[0], e[1], e[2]]));
    const w = v.will;
    const will = w !== undefined && typeof w === 'object' && w !== null && typeof w.payload === 'string' && [-1, 0, 1, 2].includes(w.qos)
      ? { topic: typeof w.topic === 'string' ? w.topic : undefined, qos: w.qos, retain: w.retain === true, payload: w.payload }
      : undefined;
    const secs = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 0xffff;
    // Left out when absent (records of earlier versions): the restore then assumes no Will is owed.
    return {
      ...(will === undefined ? {} : { will }),
      subs,
      topics,
      ...(secs(v.ka) ? { ka: v.ka } : {}),
      ...(secs(v.sleep) ? { sleep: v.sleep } : {}),
      ...(typeof v.ended === 'boolean' ? { ended: v.ended } : {}),
    };
  } catch {
    return undefined;
  }
}
