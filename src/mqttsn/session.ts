/**
 * One MQTT-SN client as the gateway keeps it, keyed by ClientId (not by address: a
 * sensor behind NAT may come back from another port). It lives in-process on the bus:
 * its subscriptions are bus subscriptions, its publishes are bus publishes.
 */
import type { BusSubscription } from '../core/bus.js';
import type { TimerHandle } from '../core/clock.js';
import { makeOrigin, type Message, type Origin, type QoS } from '../core/message.js';
import type { ClientState } from './client-state.js';
import type { Encapsulation, Publish, SnQoS } from './packets.js';
import { TopicRegistry } from './topic-registry.js';

/** Where a client is: address, port and, behind a forwarder, its Wireless Node Id (§5.5). */
export interface Peer {
  address: string;
  port: number;
  encapsulation: Encapsulation | undefined;
  /** address|port|node: the key of the address table. */
  key: string;
}

/** The source address and port as one key (flood buckets, and sessions of unencapsulated clients). */
export const sourceKeyOf = (from: { address: string; port: number }): string => `${from.address}|${from.port}`;

/** The address a reply goes to: unicast replies carry Radius 0 in Ctrl (§5.5: only relevant for broadcasts). */
export function unicast(peer: Peer): Peer {
  return peer.encapsulation === undefined ? peer : { ...peer, encapsulation: { ...peer.encapsulation, ctrl: 0 } };
}

/**
 * `key`: sourceKeyOf(from), when the caller made it already (one string, hashed once, per datagram).
 * The Ctrl the forwarder sent is not kept: its Radius is only relevant gateway → forwarder
 * (§5.5), so every answer to this peer (a DISCONNECT or CONNACK sent before any session
 * exists included) goes back as unicast, Radius 0; only GWINFO sets one (discovery.ts).
 */
export function makePeer(from: { address: string; port: number }, encapsulation: Encapsulation | undefined, key = sourceKeyOf(from)): Peer {
  if (encapsulation === undefined) return { address: from.address, port: from.port, encapsulation, key };
  return { address: from.address, port: from.port, encapsulation: { ctrl: 0, wirelessNodeId: encapsulation.wirelessNodeId }, key: `${key}|${encapsulation.wirelessNodeId.toString('hex')}` };
}

export interface Will {
  /** Undefined while only WILLMSGUPD has arrived: nothing to publish yet. */
  topic: string | undefined;
  qos: SnQoS;
  retain: boolean;
  payload: Buffer;
}

/** A message waiting to go to the client. */
export interface OutItem {
  msg: Message;
  qos: QoS;
  /**
   * PUBACK "rejected: invalid topic ID" answers to this message so far: each makes the gateway
   * REGISTER the name and resend (outbound.ts), a bounded number of times.
   */
  topicRejects?: number;
  /** "Rejected: congestion" answers (PUBACK, or REGACK of its topic) so far: resent after a wait, bounded. */
  congested?: number;
  /** Its row in the store while it waits (QoS 1/2 for a persistent session; persistence.ts). */
  rowId?: number;
}

/** The one exchange in flight towards the client (§6.10: one QoS 1/2 PUBLISH or REGISTER at a time). */
export type Flight =
  | { kind: 'register'; msgId: number; topicId: number; retries: number }
  | { kind: 'publish'; msgId: number; item: OutItem; packet: Publish; stage: 'ack' | 'rec' | 'comp'; retries: number };

export class SnSession {
  state: ClientState = 'disconnected';
  peer: Peer | undefined;
  cleanSession = true;
  keepaliveMs = 0;
  sleepMs = 0;
  lastSeen = 0;
  sleepDeadline = 0;
  expiryDeadline = 0;
  will: Will | undefined;
  /**
   * A CONNECT whose Will prompts are under way (§6.2), with its CleanSession flag and Keep Alive:
   * they take effect when the exchange completes (handlers/connect.ts), not before.
   */
  connecting: { stage: 'topic' | 'msg'; deadline: number; cleanSession: boolean; keepaliveMs: number; topic?: { topic: string; qos: SnQoS; retain: boolean } } | undefined;
  readonly topics: TopicRegistry;
  subs: Map<string, BusSubscription> | undefined;
  /** Filters the ACL grants only in part: each message is checked before delivery (gateway.ts). */
  partialRead: Set<string> | undefined;
  /** The QoS of each subscription, for the stored session (persistence.ts). */
  subQos: Map<string, QoS> | undefined;
  /** The stored text of this session as last saved (undefined: not stored). */
  saved: string | undefined;
  /** sleepMs as last stored (a sleep cycle with an unchanged Duration stores nothing). */
  savedSleepMs = 0;
  /**
   * The connection ended owing no Will: a DISCONNECT (§6.12), or the Will went out when the
   * client was lost. Stored, so that a restart knows whether a client that never comes
   * back still owes its Will.
   */
  ended = true;
  /**
   * Restored after a restart while the client was connected (or asleep): clock ms by which
   * it must have CONNECTed again, or its Will is published (persistence.ts).
   */
  willDeadline: number | undefined;
  /** Incoming QoS 2 MsgIds between PUBLISH and PUBREL → whether PUBREC was sent (committed). */
  qos2In: Map<number, boolean> | undefined;
  /** The last incoming QoS 1 MsgId and whether its PUBACK went out (a DUP is not published twice). */
  lastQos1: { msgId: number; done: boolean; topicId: number } | undefined;
  /** Supervision: keepalive, sleep, Will prompts or session expiry, whichever applies. */
  timer: TimerHandle | undefined;
  /** Clock ms the supervision timer is due (the progress probe looks for overdue ones). */
  timerDue = 0;
  // ---- outbound ----
  queue: OutItem[] = [];
  flight: Flight | undefined;
  retryTimer: TimerHandle | undefined;
  /** While awake: messages still to deliver before PINGRESP (§6.14). */
  budget = 0;
  /** Clock ms until which nothing more is sent to the client: it answered "rejected: congestion". */
  pausedUntil = 0;
  /** The last QoS 0 PUBLISH sent (its TopicIdType, -1 for none, TopicId and topic): a PUBACK 0x02 may name it. */
  lastQos0Type = -1;
  lastQos0Id = 0;
  lastQos0Topic = '';
  /** Topics whose predefined id or short name the client rejected: a normal id is REGISTERed for them. */
  notPredefined: Set<string> | undefined;
  private nextId = 1;

  /** One origin object for all its messages, with its key made once (core/message.ts). */
  readonly origin: Origin;

  constructor(
    readonly clientId: string,
    maxTopics: number,
  ) {
    this.origin = makeOrigin('mqttsn', clientId);
    this.topics = new TopicRegistry(maxTopics);
  }

  /**
   * Whether a topic id is in an exchange under way, so the table must not give it up
   * (topic-registry.ts): our REGISTER awaiting REGACK, our PUBLISH awaiting its answer, or
   * the client's last QoS 1 PUBLISH, whose retransmission (DUP) must still name the topic.
   */
  readonly topicInUse = (id: number): boolean => {
    const f = this.flight;
    if (f?.kind === 'register' && f.topicId === id) return true;
    if (f?.kind === 'publish' && f.packet.topicIdType === 0 && f.packet.topicId === id) return true;
    return this.lastQos1?.topicId === id;
  };

  /** MsgIds 1..65535 (0 is used by QoS 0 and -1 only). */
  allocateMsgId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** Drops everything the session holds (clean session, or its end). Returns messages lost. */
  reset(): number {
    for (const sub of this.subs?.values() ?? []) sub.unsubscribe();
    this.subs = undefined;
    this.subQos = undefined;
    this.topics.clear();
    this.qos2In = undefined;
    this.lastQos1 = undefined;
    this.will = undefined;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const lost = this.queue.length + (this.flight?.kind === 'publish' ? 1 : 0);
    this.queue = [];
    this.flight = undefined;
    this.budget = 0;
    this.pausedUntil = 0;
    this.lastQos0Type = -1;
    this.notPredefined = undefined;
    return lost;
  }
}
