/**
 * Drains one bridge's outbox to the cloud, oldest first.
 *
 *   outbox (committed rows) ─read─▶ buffer ─▶ window (unacked ≤ remote Receive Maximum; + unstored ≤ inflight)
 *        ▲                                         │ PUBLISH QoS 1/2 (packet id per row)
 *        └──────────── ack (delete row) ◀── PUBACK / PUBCOMP from the cloud
 *
 * A row is deleted only after the cloud acknowledged it (rows of QoS 0 rules: once written
 * to the socket, there is nothing to wait for). A row of a QoS 1/2 rule that goes at QoS 0, to a
 * cloud that takes nothing higher, is acknowledged by the PINGRESP to a PINGREQ sent after it:
 * a broker handles a connection's packets in order, so it has taken the row by then. After a reconnect everything still in
 * flight is sent again first, in order, with DUP set; the cloud may then see a
 * duplicate, never a gap.
 *
 * The window counts a row until its delete is committed, not only until its ack: the
 * outbox may hold deletes for the commit delay, and a crash sends again every row whose
 * delete was not committed. So duplicates after a crash stay within the inflight window.
 * When acks alone fill the window, the forwarder asks the outbox to commit at once.
 * The cloud's Receive Maximum caps only the rows it has not acknowledged (it is a limit on
 * unacknowledged PUBLISHes [MQTT-3.3.4-7]); rows it acknowledged and whose delete waits for
 * the commit count against our own window alone. Capping both by it would tie the commit
 * rate to the cloud's setting: a cloud announcing 10 would force a commit, and its fsync,
 * every 10 messages.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ProgressStamp } from '../core/progress.js';
import type { Outbox, OutboxEntry } from '../store/outbox.js';
import { CALLER_MAX_PACKET_ID, type Upstream, type UpstreamSession } from './upstream.js';
import { withIdentity, type IdentityMode } from './identity.js';
import { RowCursor } from './row-cursor.js';
import { ClosingHead, CLOSES_IN_A_ROW } from './closing-head.js';
import { LogRateLimiter } from '../observability/rate-limit.js';

export interface ForwarderOptions {
  bridge: string;
  /** Our window: rows sent and not yet deleted (at most this many are sent again after a crash). */
  inflight: number;
  identity: IdentityMode;
  rate?: { msgsPerSec?: number; bytesPerSec?: number };
  /** Rows read from the outbox per refill. */
  batch?: number;
  /** strict (default): oldest first. live-first: new rows before the backlog found at link-up. */
  order?: 'strict' | 'live-first';
}

/** Reason codes after which resending cannot help: the row is dropped (counted, logged). */
const PERMANENT_REFUSALS = new Set([0x87, 0x90, 0x93, 0x95, 0x99, 0x9a, 0x9b]);
/** PUBACK 0x95: counted with the rows larger than the cloud's Maximum Packet Size, not as a refusal. */
const PACKET_TOO_LARGE = 0x95;
/** Wait before resending a row the cloud refused for a passing reason (0x80, 0x83, 0x97). */
const RETRY_AFTER_MS = 1000;

export class Forwarder {
  /** New rows (strict: all rows), oldest first. */
  private main: RowCursor;
  /** live-first: the backlog found at each link-up, drained after (and beside) live rows. */
  private readonly backlogs: RowCursor[] = [];
  /** The cursor the last row came from, to hand it back there. */
  private lastFrom: RowCursor;
  /** packet id → row, in send order. */
  private readonly inflight = new Map<number, OutboxEntry>();
  /** packet id → the cursor its row came from (live-first: main or a backlog), to hand it back there. */
  private readonly origins = new Map<number, RowCursor>();
  /**
   * Packet ids of rows sent at QoS 2 and not acknowledged yet. A broker may deliver a QoS 2
   * message only on PUBREL (Mosquitto does), so a QoS 0/1 row sent behind one would reach the
   * subscribers first: such a row waits until none is in flight (rules of different QoS, or a
   * reload that changed a rule's QoS with rows buffered).
   */
  private readonly qos2InFlight = new Set<number>();
  /**
   * Rows of QoS 1/2 rules sent at QoS 0 (a cloud with Maximum QoS 0), in send order, each with
   * the number of the PINGREQ sent after it (0: none yet, see askBarrier); deleted when that
   * PINGREQ is answered, sent again after a reconnect. They count in our window.
   */
  private unconfirmed: { e: OutboxEntry; from: RowCursor; barrier: number }[] = [];
  private nextId = 1;
  private up = false;
  /** Unacknowledged rows the cloud takes (its Receive Maximum). */
  private remoteReceiveMaximum = 0;
  private remoteMaxPacket = Number.POSITIVE_INFINITY;
  private remoteMaxQos = 2;
  /**
   * A cloud without QoS 2 that cannot say so (3.1.1 has no Maximum QoS): it closed the link right
   * after the same QoS 2 row CLOSES_IN_A_ROW times and never took one (qos2Taken). From then on
   * QoS 2 rows go at QoS 1, as for an MQTT 5 cloud announcing Maximum QoS 1 [MQTT-3.2.2-11].
   */
  private noQos2 = false;
  private qos2Taken = false;
  private blocked = false;
  /** Acked rows whose deletes are not committed yet (they count in the window). */
  private unstored = 0;
  /** The latest ack promise and how many released rows wait on it. */
  private storing: { promise: Promise<void>; rows: number } | undefined;
  private flushing = false;
  /** Packet ids to send again (DUP) after a reconnect, in their original order. */
  private resend: number[] = [];
  private waitTimer: TimerHandle | undefined;
  /** Token buckets of the rate budget; full at construction (one second's worth). */
  private tokens: { msgs: number; bytes: number; at: number };
  readonly counters = { sent: 0, resent: 0, acked: 0, refused: 0, tooLarge: 0 };
  /** The last turn of the drain loop (a pump, an ack, the link going up or down). */
  private readonly stamp: ProgressStamp;
  /**
   * Refusals and oversized rows come one per row: a cloud ACL that denies a busy topic
   * would otherwise write an error line for every message (5 per topic and reason per 10 s).
   */
  private readonly refusalLog: LogRateLimiter;
  /** A 3.1.1 cloud that closes the link on one row (closing-head.ts): when each row in flight was last sent. */
  private readonly sentAt = new Map<number, number>();
  private readonly closingHead = new ClosingHead();
  private lastAckAt = Number.NEGATIVE_INFINITY;
  private upAt = 0;

  constructor(
    private readonly opts: ForwarderOptions,
    private readonly outbox: Outbox,
    private readonly upstream: Pick<Upstream, 'publish' | 'barrier'>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.stamp = new ProgressStamp(clock);
    this.refusalLog = new LogRateLimiter(clock);
    this.tokens = { msgs: opts.rate?.msgsPerSec ?? 0, bytes: opts.rate?.bytesPerSec ?? 0, at: clock.now() };
    this.main = new RowCursor(outbox, opts.bridge, 0, Number.POSITIVE_INFINITY, opts.batch ?? 500);
    this.lastFrom = this.main;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /**
   * Since when rows have been waiting that the drain should be sending: the link is up, the
   * window has room, nothing is paused (rate budget, a refusal's retry pause) or blocked (a
   * full socket), and committed rows are not in flight. Waiting for acks or for the uplink
   * (backoff) is not stuck.
   */
  waitingSince(): number | undefined {
    if (!this.up || this.blocked || this.waitTimer !== undefined) return undefined;
    const held = this.inflight.size + this.unconfirmed.length + this.unstored;
    // A row held back behind a QoS 2 one in flight (qos2InFlight) waits for an ack, like a full window.
    const unsent = this.resend.length > 0 || (this.hasRoom() && this.qos2InFlight.size === 0 && this.outbox.stats(this.opts.bridge).rows > held);
    return unsent ? this.stamp.at : undefined;
  }

  /**
   * The wall clock stepped (core/clock-steps.ts): the rows read from the outbox before it
   * (buffered or in flight) move with it, so a resend carries the right remaining Message Expiry.
   */
  clockStepped(deltaMs: number): void {
    const rows = new Set<OutboxEntry>([...this.inflight.values(), ...this.unconfirmed.map((u) => u.e)]);
    for (const c of [this.main, ...this.backlogs]) for (const e of c.buffered) rows.add(e);
    for (const e of rows) {
      e.createdAt += deltaMs;
      if (e.expiresAt !== undefined) e.expiresAt += deltaMs;
    }
    this.tokens.at += deltaMs;
    this.stamp.at += deltaMs;
  }

  /** The link is up: resend what was in flight (same ids, DUP), then continue the drain. */
  onUp(session: UpstreamSession): void {
    this.stamp.turn();
    this.up = true;
    this.upAt = this.clock.now();
    this.blocked = false;
    this.remoteReceiveMaximum = Math.max(1, session.receiveMaximum);
    this.remoteMaxPacket = session.maximumPacketSize ?? Number.POSITIVE_INFINITY;
    this.remoteMaxQos = session.maximumQoS ?? 2;
    // The budget is not refilled here: a link that flaps would get a fresh bucket on every
    // reconnect and overspend a metered uplink (issue 4, "rate budget"). It refills with time,
    // down or up, to at most one second's worth (takeBudget).
    this.resend = [...this.inflight.keys()];
    if (this.opts.order === 'live-first') this.splitBacklog();
    this.pump();
  }

  /** The link is gone; `byUs` when the bridge stopped it. */
  onDown(byUs = false): void {
    this.stamp.turn();
    const wasUp = this.up;
    this.up = false;
    this.waitTimer?.cancel();
    this.waitTimer = undefined;
    // Not known to have reached the cloud: sent again, in order, ahead of the rest.
    for (const u of this.unconfirmed.reverse()) this.handBack(u.e, u.from);
    this.unconfirmed = [];
    if (wasUp && !byUs) this.watchHead();
  }

  /** The cloud answered PINGREQ number `barrier`: the rows sent at QoS 0 before it reached it. */
  onPassed(barrier: number): void {
    let n = 0;
    while (n < this.unconfirmed.length && this.unconfirmed[n]!.barrier !== 0 && this.unconfirmed[n]!.barrier <= barrier) n++;
    if (n === 0) return;
    this.stamp.turn();
    for (const u of this.unconfirmed.splice(0, n)) {
      this.counters.acked++;
      this.release(u.e);
    }
    this.pump();
  }

  onWritable(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.pump(); // resends that did not fit before the socket filled up go first
  }

  /** New rows were committed. */
  onCommitted(): void {
    this.pump();
  }

  onAcked(packetId: number, reasonCode: number): void {
    this.stamp.turn();
    const e = this.inflight.get(packetId);
    if (e === undefined) return;
    this.lastAckAt = this.clock.now();
    this.inflight.delete(packetId);
    this.sentAt.delete(packetId);
    if (this.qos2InFlight.delete(packetId) && reasonCode < 0x80) this.qos2Taken = true;
    const from = this.origins.get(packetId);
    this.origins.delete(packetId);
    if (reasonCode >= 0x80 && !PERMANENT_REFUSALS.has(reasonCode)) {
      // The cloud is busy or unwell: keep the row and send it again after a pause,
      // ahead of everything not yet sent, so order is kept.
      this.refusalLog.write(this.log, 'warn', `${reasonCode} ${e.topic}`, { topic: e.topic, reasonCode }, 'cloud refused a message for now; resending');
      this.handBack(e, from ?? this.main);
      this.pauseFor(RETRY_AFTER_MS);
      return;
    }
    if (reasonCode === PACKET_TOO_LARGE) {
      // From the cloud, or from our client, which does not send what exceeds the cloud's
      // Maximum Packet Size once the properties are encoded [MQTT-3.1.2-24].
      this.counters.tooLarge++;
      this.refusalLog.write(this.log, 'error', `too-large ${e.topic}`, { topic: e.topic, reasonCode, msgId: e.msgId }, 'message larger than the cloud accepts; dropped');
    } else if (reasonCode >= 0x80) {
      this.counters.refused++;
      this.refusalLog.write(this.log, 'error', `${reasonCode} ${e.topic}`, { topic: e.topic, reasonCode, msgId: e.msgId }, 'cloud refused a message; dropped (check its ACL / topic rules)');
    } else {
      this.counters.acked++;
      this.closingHead.taken(e.payload.length + e.topic.length);
    }
    this.release(e);
    this.pump();
  }

  /** After a close by the cloud: the oldest row in flight may be one it closes the link on (closing-head.ts). */
  private watchHead(): void {
    const first = this.inflight.entries().next();
    const [id, e] = first.done === true ? [0, undefined] : first.value;
    const size = e === undefined ? 0 : e.payload.length + e.topic.length;
    const head = e === undefined ? undefined : { seq: e.seq, size, sentAt: this.sentAt.get(id) };
    const verdict = this.closingHead.closed(head, this.lastAckAt, this.upAt, this.clock.now());
    if (verdict.kind === 'other' || e === undefined) return;
    const fields = { topic: e.topic, size, msgId: e.msgId, closes: verdict.closes };
    if (verdict.closes >= CLOSES_IN_A_ROW && this.qos2InFlight.has(id) && !this.qos2Taken && !this.noQos2) {
      // Not this row but its QoS: resent at QoS 1 (the cloud kept no QoS 2 state of a PUBLISH it closed on).
      this.noQos2 = true;
      this.qos2InFlight.clear();
      this.log.warn(fields, 'the cloud closes the link on QoS 2 messages, which a 3.1.1 cloud cannot refuse otherwise: sending them at QoS 1 from now on; set qos: 1 in the rules of bridges[]');
      return;
    }
    if (verdict.kind === 'suspect') {
      this.log.warn(fields, 'cloud closed the link right after the oldest message in flight');
      return;
    }
    this.inflight.delete(id);
    this.sentAt.delete(id);
    this.qos2InFlight.delete(id);
    this.origins.delete(id);
    this.counters.refused++;
    this.log.error(fields, 'cloud closed the link right after this message each time it was sent (a 3.1.1 cloud refusing it: too large or not allowed); dropped');
    this.release(e);
  }

  stop(): void {
    this.up = false;
    this.waitTimer?.cancel();
    this.waitTimer = undefined;
  }

  private pump(): void {
    this.pumpRows();
    this.askBarrier();
  }

  /** One PINGREQ behind the rows sent at QoS 0 since the last one (see unconfirmed). */
  private askBarrier(): void {
    const last = this.unconfirmed.at(-1);
    if (!this.up || last === undefined || last.barrier !== 0) return;
    const n = this.upstream.barrier?.();
    if (n === undefined) return;
    for (let i = this.unconfirmed.length - 1; i >= 0 && this.unconfirmed[i]!.barrier === 0; i--) this.unconfirmed[i]!.barrier = n;
  }

  private pumpRows(): void {
    this.stamp.turn();
    if (!this.up || this.blocked || this.waitTimer !== undefined) return;
    while (this.resend.length > 0) {
      const id = this.resend[0]!;
      const e = this.inflight.get(id);
      if (e !== undefined && this.qosFor(e) === 0 && this.upstream.barrier !== undefined) {
        // Sent with QoS 1/2 on an earlier link, and the cloud takes QoS 0 only now.
        if (!this.send(e, 0, true)) {
          this.blocked = true;
          return;
        }
        this.inflight.delete(id);
        this.qos2InFlight.delete(id);
        this.unconfirmed.push({ e, from: this.origins.get(id) ?? this.main, barrier: 0 });
        this.origins.delete(id);
        this.counters.resent++;
      } else if (e !== undefined) {
        if (!this.send(e, id, true)) {
          this.blocked = true;
          return;
        }
        this.counters.resent++;
      }
      this.resend.shift();
    }
    while (this.hasRoom()) {
      const e = this.nextRow();
      if (e === undefined) return;
      const size = e.payload.length + e.topic.length;
      if (size + 16 > this.remoteMaxPacket) {
        this.counters.tooLarge++;
        this.refusalLog.write(this.log, 'error', `too-large ${e.topic}`, { topic: e.topic, size, max: this.remoteMaxPacket }, 'message larger than the cloud accepts; dropped');
        this.release(e);
        continue;
      }
      if (this.qos2InFlight.size > 0 && this.qosFor(e) < 2) {
        this.unread(e); // after the QoS 2 rows ahead of it are acknowledged (onAcked pumps)
        return;
      }
      const wait = this.takeBudget(size);
      if (wait > 0) {
        this.unread(e);
        this.pauseFor(wait);
        return;
      }
      const id = this.qosFor(e) > 0 ? this.allocateId() : 0;
      if (!this.send(e, id, false)) {
        this.unread(e);
        this.blocked = true;
        return;
      }
      this.counters.sent++;
      if (id === 0 && e.qos > 0 && this.upstream.barrier !== undefined) this.unconfirmed.push({ e, from: this.lastFrom, barrier: 0 });
      else if (id === 0) this.release(e);
      else {
        if (this.qosFor(e) === 2) this.qos2InFlight.add(id);
        this.inflight.set(id, e);
        this.origins.set(id, this.lastFrom);
      }
    }
  }

  /** Another row may be sent: the cloud takes one more unacknowledged, and our window has room. */
  private hasRoom(): boolean {
    return this.inflight.size < this.remoteReceiveMaximum && this.inflight.size + this.unconfirmed.length + this.unstored < this.opts.inflight;
  }

  /** The cloud has the row (or it is dropped): delete it; it leaves the window once that is committed. */
  private release(e: OutboxEntry): void {
    this.unstored++;
    // Acks of one batch share one promise (outbox-core.ts): one callback per commit, not per row.
    const p = this.outbox.ack(this.opts.bridge, [e.seq]);
    if (p === this.storing?.promise) this.storing.rows++;
    else {
      const batch = { promise: p, rows: 1 };
      this.storing = batch;
      const done = (): void => {
        this.unstored -= batch.rows;
        if (this.storing === batch) this.storing = undefined;
        this.pump();
      };
      p.then(done, done);
    }
    if (this.inflight.size + this.unstored >= this.opts.inflight && !this.flushing) {
      // Acks fill the window: the deletes are what the drain waits for now, not a batch.
      this.flushing = true;
      const settled = (): void => void (this.flushing = false);
      this.outbox.flush().then(settled, settled);
    }
  }

  private send(e: OutboxEntry, packetId: number, dup: boolean): boolean {
    if (packetId !== 0) this.sentAt.set(packetId, this.clock.now());
    const { payload, properties } = withIdentity(this.opts.identity, e);
    let props: (typeof properties & { messageExpiryInterval?: number }) | undefined = properties;
    if (e.expiresAt !== undefined) {
      // Remaining lifetime, as a broker would forward it [MQTT-3.3.2-6].
      props = { ...properties, messageExpiryInterval: Math.max(1, Math.ceil((e.expiresAt - this.clock.now()) / 1000)) };
    }
    return this.upstream.publish({ packetId, topic: e.topic, payload, qos: this.qosFor(e), retain: e.retain, dup, properties: props });
  }

  /** A cloud announcing Maximum QoS 1 would disconnect us for a QoS 2 publish (§3.2.2.3.4). */
  private qosFor(e: OutboxEntry): 0 | 1 | 2 {
    const max = this.noQos2 ? Math.min(this.remoteMaxQos, 1) : this.remoteMaxQos;
    return e.qos > max ? (max as 0 | 1) : e.qos;
  }

  /**
   * live-first: everything committed up to now is backlog; it drains beside the rows
   * that arrive from now on, which go first. Per-source order at the cloud then holds
   * within live and within backlog, not across them (outpost-seq tells them apart).
   */
  private splitBacklog(): void {
    const newest = this.outbox.newestSeq(this.opts.bridge);
    const from = this.main.position;
    if (newest <= from) return;
    this.backlogs.push(new RowCursor(this.outbox, this.opts.bridge, from, newest, this.opts.batch ?? 500));
    this.main = new RowCursor(this.outbox, this.opts.bridge, newest, Number.POSITIVE_INFINITY, this.opts.batch ?? 500);
  }

  private nextRow(): OutboxEntry | undefined {
    const live = this.main.next();
    if (live !== undefined) {
      this.lastFrom = this.main;
      return live;
    }
    while (this.backlogs.length > 0) {
      const b = this.backlogs[0]!;
      const e = b.next();
      if (e !== undefined) {
        this.lastFrom = b;
        return e;
      }
      if (!b.done) break;
      this.backlogs.shift();
    }
    return undefined;
  }

  /** Puts a row back at the head of what is still to send. */
  private unread(e: OutboxEntry): void {
    this.lastFrom.unread(e);
  }

  /**
   * Puts a refused row back into the cursor it came from, which need not be the last one
   * read (live-first). When that cursor is gone (a backlog that finished meanwhile, or the
   * live cursor a reconnect replaced), the row gets a cursor of its own, ahead of the
   * backlogs: handed to a dropped cursor, it was never sent again, a gap at the cloud until
   * a restart.
   */
  private handBack(e: OutboxEntry, from: RowCursor): void {
    if (from === this.main || this.backlogs.includes(from)) from.unread(e);
    else this.backlogs.unshift(new RowCursor(this.outbox, this.opts.bridge, e.seq - 1, e.seq, 1));
  }

  private pauseFor(ms: number): void {
    this.waitTimer?.cancel();
    this.waitTimer = this.clock.setTimeout(() => {
      this.waitTimer = undefined;
      this.pump();
    }, ms);
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === CALLER_MAX_PACKET_ID ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /** Token buckets for msgs/s and bytes/s; returns ms to wait, 0 when the message may go. */
  private takeBudget(size: number): number {
    const rate = this.opts.rate;
    if (rate === undefined || (rate.msgsPerSec === undefined && rate.bytesPerSec === undefined)) return 0;
    const now = this.clock.now();
    const dt = (now - this.tokens.at) / 1000;
    this.tokens.at = now;
    let wait = 0;
    if (rate.msgsPerSec !== undefined) {
      this.tokens.msgs = Math.min(Math.max(1, rate.msgsPerSec), this.tokens.msgs + dt * rate.msgsPerSec);
      if (this.tokens.msgs < 1) wait = Math.max(wait, ((1 - this.tokens.msgs) / rate.msgsPerSec) * 1000);
    }
    if (rate.bytesPerSec !== undefined) {
      this.tokens.bytes = Math.min(Math.max(size, rate.bytesPerSec), this.tokens.bytes + dt * rate.bytesPerSec);
      if (this.tokens.bytes < size) wait = Math.max(wait, ((size - this.tokens.bytes) / rate.bytesPerSec) * 1000);
    }
    if (wait > 0) return Math.ceil(wait);
    if (rate.msgsPerSec !== undefined) this.tokens.msgs -= 1;
    if (rate.bytesPerSec !== undefined) this.tokens.bytes -= size;
    return 0;
  }
}
