/** What the packet handlers need from the MQTT-SN gateway (one small interface, no god object). */
import type { Logger } from 'pino';
import type { Bus } from '../core/bus.js';
import type { Authorizer } from '../core/authorizer.js';
import type { QoS } from '../core/message.js';
import type { MqttsnConfig } from '../config/mqttsn-schema.js';
import type { ClientEvent } from './client-state.js';
import type { SourceList } from './guards.js';
import type { GwinfoPacer } from './handlers/discovery.js';
import type { OutboundHost } from './outbound.js';
import type { SnDropReason } from './metrics.js';
import type { Packet } from './packets.js';
import type { Peer, SnSession } from './session.js';

export interface SnContext extends OutboundHost {
  readonly bus: Bus;
  /** The ACL as it applies to MQTT-SN client ids (allows everything when none is configured). */
  readonly authorizer: Authorizer;
  readonly config: MqttsnConfig;
  /** broker.max_topic_levels: the depth MQTT clients' topics are held to (topic-limit.ts). */
  readonly maxTopicLevels: number;
  readonly log: Logger;
  readonly qosMinusOneSources: SourceList;
  /** Broadcast GWINFO answers to SEARCHGW, paced per broadcast domain (handlers/discovery.ts). */
  readonly gwinfoPacer: GwinfoPacer;
  readonly byId: Map<string, SnSession>;
  readonly byPeer: Map<string, SnSession>;
  /** Sends to an address (no session needed: CONNACK refusals, DISCONNECT, GWINFO). */
  sendTo(peer: Peer, packet: Packet): void;
  /** Sends to the client's current address. */
  reply(s: SnSession, packet: Packet): void;
  /** Feeds an event to the client's state machine and performs the resulting actions. */
  apply(s: SnSession, event: ClientEvent): void;
  /** The client is now at this address (CONNECT, or a sleeper waking from a new NAT port). */
  bind(s: SnSession, peer: Peer): void;
  /** (Re)arms the session's supervision timer from its state. */
  armTimer(s: SnSession): void;
  /**
   * checkRead: the ACL grants the filter only in part, so each message is checked before
   * delivery; retained: whether the filter's retained messages are delivered (default true).
   */
  subscribe(s: SnSession, filter: string, qos: QoS, checkRead?: boolean, retained?: boolean): void;
  /** Counts a dropped datagram or message and logs it, rate-limited. */
  reject(reason: SnDropReason, peer: Peer | undefined, detail: string): void;
  /** Stores the session's changes, then acknowledges (persistence.ts): `refused` if storing failed. */
  afterStored(s: SnSession, ack: () => void, refused?: () => void): void;
  /** After a CONNACK refusal in the Will prompts: the client is left unconnected (not bound to its address). */
  refuseConnect(s: SnSession): void;
  newSession(clientId: string): SnSession | undefined;
  endSession(s: SnSession): void;
}
