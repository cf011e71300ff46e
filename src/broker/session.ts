/**
 * Session state that outlives a network connection (§4.1): subscriptions, the outgoing
 * QoS 1/2 flow (inflight window plus a bounded queue) and incoming QoS 2 packet ids.
 * It is a Subscriber in the routing tree; the live connection, when there is one, is
 * its SessionLink.
 */
import { ownPayload, type Message, type QoS } from '../core/message.js';
import type { TimerHandle } from '../core/clock.js';
import type { StampMover } from '../core/clock-steps.js';
import type { DeliveryState, StateJournal, StoredDelivery, WillSpec } from '../core/persistence.js';
import type { Subscriber, SubscriptionEntry } from './subscription-tree.js';
import type { BrokerMetrics, DropReason } from './metrics.js';

/** What a session needs from the connection currently carrying it. */
export interface SessionLink {
  /** Outgoing QoS 1/2 window: min(client Receive Maximum, broker max_inflight). */
  readonly window: number;
  /** True while the socket has more buffered than the high-water mark. */
  readonly congested: boolean;
  /** Sends a PUBLISH; returns the drop reason if the message could not be sent to this client. */
  sendPublish(msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined, packetId: number, dup: boolean): DropReason | undefined;
  sendPubrel(packetId: number): void;
}

export interface OutFlight {
  packetId: number;
  msg: Message;
  qos: 1 | 2;
  retainFlag: boolean;
  subIds: readonly number[] | undefined;
  /** wait-ack: PUBLISH QoS 1 sent; wait-rec: PUBLISH QoS 2 sent; wait-comp: PUBREL sent. */
  state: 'wait-ack' | 'wait-rec' | 'wait-comp';
  /** Its row in the journal; 0 when the session is not persisted. */
  rowId: number;
  /** Not yet resent on the current connection: it waits for room in the client's Receive Maximum. */
  held?: boolean;
  /** wait-comp not committed yet: its PUBREL waits for the commit. */
  releasing?: boolean;
}

interface Pending {
  msg: Message;
  qos: QoS;
  retainFlag: boolean;
  subIds: readonly number[] | undefined;
  size: number;
  rowId: number;
}

export interface SessionLimits {
  maxQueuedMessages: number;
  maxQueuedBytes: number;
}

export interface SessionEvents {
  onDrop(session: Session, reason: DropReason, msg: Message): void;
}

export class Session implements Subscriber {
  readonly key: string;
  readonly originId: string;
  /** Full filter (with $share prefix) → entry. */
  private subs: Map<string, SubscriptionEntry> | undefined;
  private flights: Map<number, OutFlight> | undefined;
  private q2: Set<number> | undefined;
  /**
   * Incoming QoS 2 commits still running, by packet id: the same PUBLISH resent on a new
   * connection after a drop is answered when that commit settles, never before it
   * (persist before you acknowledge).
   */
  qos2Commits: Map<number, Promise<void>> | undefined;
  /** Incoming QoS 2 packet ids between PUBREC and PUBREL [MQTT-4.3.3-9]. */
  link: SessionLink | undefined;
  protocolVersion: 3 | 4 | 5 = 4;
  /** Seconds; 0 = ends with the connection. 0xFFFFFFFF = never. */
  expiryInterval = 0;
  expiryTimer: TimerHandle | undefined;
  willTimer: TimerHandle | undefined;
  /**
   * Will waiting for its Will Delay Interval [MQTT-3.1.3-9]. Its Message Expiry Interval
   * (seconds) starts when it is published (§3.1.3.2.4), so it is kept unstamped here.
   */
  pendingWill: WillSpec | undefined;
  /** The Will of the connected client, stored with a persistent session (a restart may owe it). */
  liveWill: WillSpec | undefined;
  /** Clock ms its last connection closed; undefined while connected. */
  offlineAt: number | undefined;
  /** The verified user name of the connection that last opened it (the ACL subject with the client id). */
  user: string | undefined;
  /** Routing scratch: marks the last publish that reached this subscriber (dedup of overlaps). */
  routeMark = 0;
  /**
   * Set while the session is persistent (clean session 0 / session expiry > 0 and
   * persistence on): every change of its QoS 1/2 state is written through. QoS 0 and
   * clean sessions never touch it.
   */
  journal: StateJournal | undefined;
  private queue: Pending[] = [];
  private head = 0;
  private queuedBytes = 0;
  private nextId = 1;
  /** Inflight flows not yet resent on the current connection (OutFlight.held). */
  private heldCount = 0;

  constructor(
    readonly clientId: string,
    private readonly limits: SessionLimits,
    private readonly metrics: BrokerMetrics,
    private readonly events: SessionEvents,
  ) {
    this.key = clientId;
    this.originId = clientId;
  }

  // Created on first use: an idle client should cost as little memory as possible.
  get subscriptions(): Map<string, SubscriptionEntry> {
    return (this.subs ??= new Map());
  }

  get inflight(): Map<number, OutFlight> {
    return (this.flights ??= new Map());
  }

  /** Incoming QoS 2 packet ids between PUBREC and PUBREL [MQTT-4.3.3-9]. */
  get qos2In(): Set<number> {
    return (this.q2 ??= new Set());
  }

  get inflightCount(): number {
    return this.flights?.size ?? 0;
  }

  /** QoS 1/2 PUBLISHes the current connection has and has not acknowledged: what its Receive Maximum bounds. */
  private get outstanding(): number {
    return this.inflightCount - this.heldCount;
  }

  get isOnline(): boolean {
    return this.link !== undefined;
  }

  get queuedCount(): number {
    return this.queue.length - this.head;
  }

  get queuedSize(): number {
    return this.queuedBytes;
  }

  /** The wall clock stepped (core/clock-steps.ts): its stamps and its messages' expiry move with it. */
  clockStepped(mover: StampMover, offlineAtOfEarlierRun = false): void {
    if (!offlineAtOfEarlierRun) this.offlineAt = mover.at(this.offlineAt);
    mover.will(this.pendingWill);
    for (let i = this.head; i < this.queue.length; i++) mover.message(this.queue[i]!.msg);
    for (const f of this.flights?.values() ?? []) mover.message(f.msg);
  }

  deliver(msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined): void {
    const link = this.link;
    if (link === undefined) {
      // QoS 0 is not kept for offline sessions (§3.1.2.4 leaves it optional; it would only age).
      if (qos === 0) return this.dropped('offline-qos0', msg);
      return this.enqueue(msg, qos, retainFlag, subIds);
    }
    if (this.queuedCount === 0 && this.heldCount === 0 && !link.congested && (qos === 0 || this.inflightCount < link.window)) {
      this.send(link, msg, qos, retainFlag, subIds, 0);
      return;
    }
    this.enqueue(msg, qos, retainFlag, subIds);
  }

  /** Moves queued messages to the connection while the window and the socket allow, in order. */
  pump(): void {
    const link = this.link;
    if (link === undefined) return;
    if (this.heldCount > 0 && !this.resendHeld(link)) return;
    while (this.head < this.queue.length && !link.congested) {
      const p = this.queue[this.head]!;
      if (p.qos > 0 && this.inflightCount >= link.window) break;
      this.queue[this.head] = undefined as unknown as Pending;
      this.head++;
      this.queuedBytes -= p.size;
      this.send(link, p.msg, p.qos, p.retainFlag, p.subIds, p.rowId);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private send(link: SessionLink, msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined, rowId: number): void {
    if (qos === 0) {
      const drop = link.sendPublish(msg, 0, retainFlag, subIds, 0, false);
      if (drop !== undefined) this.dropped(drop, msg);
      return;
    }
    const packetId = this.allocateId();
    const drop = link.sendPublish(msg, qos, retainFlag, subIds, packetId, false);
    if (drop !== undefined) {
      if (rowId !== 0) this.journal?.removeDelivery(rowId);
      return this.dropped(drop, msg);
    }
    const state = qos === 1 ? 'wait-ack' : 'wait-rec';
    const j = this.journal;
    if (j !== undefined) {
      if (rowId !== 0) j.updateDelivery(rowId, packetId, state);
      else j.addDelivery(this.clientId, { id: (rowId = j.nextDeliveryId()), msg, qos, retainFlag, subIds, packetId, state });
    }
    this.inflight.set(packetId, { packetId, msg, qos, retainFlag, subIds, state, rowId });
  }

  private enqueue(msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined): void {
    const size = msg.payload.length + msg.topic.length;
    if (this.queuedCount >= this.limits.maxQueuedMessages || this.queuedBytes + size > this.limits.maxQueuedBytes) {
      return this.dropped('queue-full', msg);
    }
    let rowId = 0;
    const j = this.journal;
    if (j !== undefined && qos > 0) {
      rowId = j.nextDeliveryId();
      j.addDelivery(this.clientId, { id: rowId, msg, qos: qos as 1 | 2, retainFlag, subIds, packetId: 0, state: 'queued' });
    }
    // Kept until the client takes it: not as a view pinning a larger buffer (core/message.ts).
    this.queue.push({ msg: ownPayload(msg), qos, retainFlag, subIds, size, rowId });
    this.queuedBytes += size;
  }

  /**
   * Resends held flows, oldest first [MQTT-4.6.0-1], while the client's Receive Maximum
   * has room [MQTT-3.3.4-9]. Returns true when none is left held (the queue may follow).
   */
  private resendHeld(link: SessionLink): boolean {
    for (const f of this.flights?.values() ?? []) {
      if (this.heldCount === 0) break;
      if (f.held !== true) continue;
      if (this.outstanding >= link.window || link.congested) return false;
      f.held = false;
      this.heldCount--;
      const drop = link.sendPublish(f.msg, f.qos, f.retainFlag, f.subIds, f.packetId, true);
      if (drop !== undefined) {
        this.finished(f);
        this.dropped(drop, f.msg);
      }
    }
    return this.heldCount === 0;
  }

  /** The flow of `f` ended (acknowledged or refused): it leaves the window and the journal. */
  private finished(f: OutFlight): void {
    if (f.held === true) {
      f.held = false;
      this.heldCount--;
    }
    this.inflight.delete(f.packetId);
    if (f.rowId !== 0) this.journal?.removeDelivery(f.rowId);
  }

  private dropped(reason: DropReason, msg: Message): void {
    this.metrics.drop(reason);
    this.events.onDrop(this, reason, msg);
  }

  private allocateId(): number {
    // Packet ids in use are never reused until acknowledged [MQTT-2.2.1-3]; the window
    // (≤ 65535) guarantees a free one exists.
    for (let i = 0; i < 65536; i++) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    throw new Error('no free packet identifier');
  }

  /** PUBACK for a QoS 1 message we sent. Returns false for an unknown id. */
  onPuback(packetId: number): boolean {
    const f = this.inflight.get(packetId);
    if (f === undefined || f.state !== 'wait-ack') return false;
    this.finished(f);
    this.pump();
    return true;
  }

  /** PUBREC for a QoS 2 message we sent [MQTT-4.3.3-3..5]. */
  onPubrec(packetId: number, reasonCode: number): boolean {
    const f = this.inflight.get(packetId);
    if (f === undefined || f.state === 'wait-ack') return false;
    if (reasonCode >= 0x80) {
      // A failed PUBREC ends the flow; no PUBREL follows (MQTT 5 §4.3.3).
      this.finished(f);
      this.pump();
      return true;
    }
    if (f.held === true) {
      // Acknowledged from the last connection before it was resent on this one.
      f.held = false;
      this.heldCount--;
    }
    f.state = 'wait-comp';
    const j = f.rowId !== 0 ? this.journal : undefined;
    if (j === undefined) {
      this.link?.sendPubrel(packetId);
      return true;
    }
    // The PUBLISH is never resent once its PUBREL went out (§4.3.3): a client that completed
    // the flow has forgotten the packet id and would take a resent PUBLISH as a new message.
    // So the PUBREL waits until wait-comp is in the file, or a crash would resend the PUBLISH.
    j.updateDelivery(f.rowId, packetId, 'wait-comp');
    f.releasing = true;
    j.committed().then(
      () => {
        f.releasing = false;
        // To whichever connection carries the session now (attach holds it back meanwhile).
        if (this.inflight.get(packetId) === f) this.link?.sendPubrel(packetId);
      },
      // Not stored: kept in memory, and the PUBREL goes out when the client next connects.
      () => {
        f.releasing = false;
      },
    );
    return true;
  }

  onPubcomp(packetId: number): boolean {
    const f = this.inflight.get(packetId);
    if (f === undefined || f.state !== 'wait-comp') return false;
    this.finished(f);
    this.pump();
    return true;
  }

  /**
   * A connection takes this session over. Unacknowledged PUBLISHes are resent with DUP
   * and PUBRELs resent, in their original order [MQTT-4.4.0-1], then the queue drains.
   * The new connection's Receive Maximum may be smaller than the flows left inflight: the
   * PUBLISHes beyond it are held and resent as acknowledgements make room [MQTT-3.3.4-9]
   * (a flow waiting for PUBCOMP counts against it too, its PUBREL is always resent).
   */
  attach(link: SessionLink): void {
    this.link = link;
    this.heldCount = 0;
    let sent = 0;
    for (const f of this.flights?.values() ?? []) {
      f.held = false;
      if (f.state === 'wait-comp') {
        if (f.releasing !== true) link.sendPubrel(f.packetId);
        sent++;
      } else if (sent >= link.window) {
        f.held = true;
        this.heldCount++;
      } else {
        const drop = link.sendPublish(f.msg, f.qos, f.retainFlag, f.subIds, f.packetId, true);
        if (drop !== undefined) {
          this.finished(f);
          this.dropped(drop, f.msg);
        } else sent++;
      }
    }
    this.pump();
  }

  detach(): void {
    this.link = undefined;
  }

  /** Records an incoming QoS 2 packet id, until its PUBREL [MQTT-4.3.3-9]. */
  addQos2In(packetId: number): void {
    this.qos2In.add(packetId);
    this.journal?.addQos2(this.clientId, packetId);
  }

  removeQos2In(packetId: number): boolean {
    const known = this.q2?.delete(packetId) ?? false;
    if (known) this.journal?.removeQos2(this.clientId, packetId);
    return known;
  }

  /**
   * Starts writing this session through `journal`: its current QoS 1/2 state is written
   * now (inflight first, then the queue: the order they were delivered in). The session
   * record and subscriptions are the broker's to write.
   */
  persistTo(journal: StateJournal): void {
    this.journal = journal;
    for (const f of this.flights?.values() ?? []) {
      f.rowId = journal.nextDeliveryId();
      journal.addDelivery(this.clientId, { id: f.rowId, msg: f.msg, qos: f.qos, retainFlag: f.retainFlag, subIds: f.subIds, packetId: f.packetId, state: f.state });
    }
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i]!;
      p.rowId = 0;
      if (p.qos === 0) continue;
      p.rowId = journal.nextDeliveryId();
      journal.addDelivery(this.clientId, { id: p.rowId, msg: p.msg, qos: p.qos as 1 | 2, retainFlag: p.retainFlag, subIds: p.subIds, packetId: 0, state: 'queued' });
    }
    for (const id of this.q2 ?? []) journal.addQos2(this.clientId, id);
  }

  /** Puts back what the journal restored at start-up (already within the caps), in order. */
  restore(deliveries: readonly StoredDelivery[], qos2In: readonly number[]): void {
    let lastId = 0;
    for (const d of deliveries) {
      if (d.state === 'queued') {
        const size = d.msg.payload.length + d.msg.topic.length;
        this.queue.push({ msg: d.msg, qos: d.qos, retainFlag: d.retainFlag, subIds: d.subIds, size, rowId: d.id });
        this.queuedBytes += size;
      } else {
        this.inflight.set(d.packetId, { packetId: d.packetId, msg: d.msg, qos: d.qos, retainFlag: d.retainFlag, subIds: d.subIds, state: d.state as Exclude<DeliveryState, 'queued'>, rowId: d.id });
        lastId = d.packetId;
      }
    }
    if (lastId !== 0) this.nextId = lastId === 65535 ? 1 : lastId + 1;
    for (const id of qos2In) this.qos2In.add(id);
  }

  /**
   * The QoS 1/2 messages this session took and its client has not received yet (inflight
   * before PUBACK/PUBREC, then queued), oldest first: what a shared subscription hands to
   * another member when the session ends (MQTT 5 §4.8.2).
   */
  unreceived(): Message[] {
    const out: Message[] = [];
    for (const f of this.flights?.values() ?? []) if (f.state !== 'wait-comp') out.push(f.msg);
    for (let i = this.head; i < this.queue.length; i++) if (this.queue[i]!.qos > 0) out.push(this.queue[i]!.msg);
    return out;
  }

  /**
   * Drops what the session holds for its client and `canRead` refuses: queued messages and
   * PUBLISHes not yet acknowledged (a flow waiting for PUBCOMP was received and stays).
   * A resumed session took them with its previous connection's rights (another user, an
   * older ACL). Returns the dropped messages.
   */
  withhold(canRead: (topic: string) => boolean): Message[] {
    const out: Message[] = [];
    for (const f of [...(this.flights?.values() ?? [])]) {
      if (f.state === 'wait-comp' || canRead(f.msg.topic)) continue;
      this.finished(f);
      out.push(f.msg);
    }
    if (this.queuedCount === 0) return out;
    const kept: Pending[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i]!;
      if (canRead(p.msg.topic)) {
        kept.push(p);
        continue;
      }
      this.queuedBytes -= p.size;
      if (p.rowId !== 0) this.journal?.removeDelivery(p.rowId);
      out.push(p.msg);
    }
    this.queue = kept;
    this.head = 0;
    return out;
  }

  /** Discards the message state (clean start, or session end); `handedOver` of them went to other subscribers. */
  clearState(handedOver = 0): void {
    const lost = this.inflightCount + this.queuedCount - handedOver;
    if (lost > 0) this.metrics.drop('session-ended', lost);
    this.flights = undefined;
    this.heldCount = 0;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.q2 = undefined;
  }
}
