/**
 * What the bridge needs from its connection to the cloud broker. The implementation
 * (upstream-client.ts) is our own MQTT client on mqtt-packet over node:tls / node:net:
 * it has no queue of its own (the outbox is the queue) and never blocks local traffic.
 */
import type { MessageProperties, QoS } from '../core/message.js';

/**
 * Packet ids 1..CALLER_MAX_PACKET_ID belong to the caller (the forwarder's publishes);
 * the ids above it are the client's own (SUBSCRIBE, state publishes), so the two can
 * never collide [MQTT-2.2.1-3].
 */
export const CALLER_MAX_PACKET_ID = 0xfeff;

export interface UpstreamTls {
  /** PEM contents (not paths): the caller reads the files, so a renewed file is re-read on reconnect. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
}

export interface UpstreamOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  /** Called before every connection attempt, so renewed certificate files are picked up. */
  tls?: () => UpstreamTls;
  protocolVersion: 4 | 5;
  /** Seconds. */
  keepalive: number;
  cleanStart: boolean;
  /**
   * Start a fresh remote session on the first connect of this client even with cleanStart
   * false. For a bridge without inbound rules: its remote session holds nothing it needs, only
   * QoS 2 exchanges a crashed or stopped predecessor left half done, which this client cannot
   * finish (it does not know their packet ids [MQTT-4.4.0-1]).
   */
  freshFirstSession?: boolean;
  /** Seconds (MQTT 5). */
  sessionExpiry: number;
  connectTimeoutMs: number;
  backoff: { baseMs: number; capMs: number };
  /** Last Will on the remote: the bridge's state topic. */
  will?: { topic: string; payload: Buffer; qos: QoS; retain: boolean };
  /** Largest packet we accept from the remote. */
  maxPacketSize?: number;
  /**
   * MQTT 3.1.1 only: CONNECT with protocol level 0x84 (the bridge flag Mosquitto's own bridge
   * sends, its `try_private`), so the remote does not send our own publishes back to us;
   * 3.1.1 has no No Local subscription option. Dropped for later attempts if the remote
   * answers CONNACK 1 (unacceptable protocol version).
   */
  bridgeMode?: boolean;
  /**
   * Inbound QoS 2 ids delivered locally whose exchange is not finished, kept across restarts
   * (src/store/inbound-qos2.ts): without it a PUBLISH the cloud resends after a crash is
   * delivered locally a second time. PUBREC waits for `add`, PUBCOMP for `remove`.
   */
  inboundQos2?: InboundQos2Log;
}

/** The durable record of inbound QoS 2 exchanges between local delivery and PUBREL. */
export interface InboundQos2Log {
  readonly ids: readonly number[];
  add(id: number): Promise<void>;
  remove(id: number): Promise<void>;
  clear(): Promise<void>;
}

export interface UpstreamSession {
  sessionPresent: boolean;
  /** The remote's Receive Maximum (65535 when it did not say; V311_RECEIVE_MAXIMUM, 20, for 3.1.1). */
  receiveMaximum: number;
  /** The remote's Maximum Packet Size, if it announced one. */
  maximumPacketSize: number | undefined;
  /** Topic Alias Maximum the remote accepts from us (0 = none). */
  topicAliasMaximum: number;
  /** The highest QoS the remote accepts (MQTT 5 Maximum QoS; for 3.1.1, 0 when it took us only with a QoS 0 Will; 2 when it did not say). */
  maximumQoS?: QoS;
  /** Whether the remote accepts retained messages (MQTT 5 Retain Available; true when it did not say). */
  retainAvailable?: boolean;
}

export interface UpstreamPublish {
  packetId: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  properties?: MessageProperties & { messageExpiryInterval?: number };
}

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: MessageProperties & { messageExpiryInterval?: number };
}

export interface UpstreamEvents {
  /** CONNACK 0 received; the link is usable. */
  up(session: UpstreamSession): void;
  /**
   * The link is gone (error text for the log); a reconnect is scheduled unless stopped.
   * Called once after each `up` (reason 'stopped' on stop), never for failed attempts.
   */
  down(reason: string): void;
  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) for one of our packet ids; reasonCode ≥ 0x80 is a refusal. */
  acked(packetId: number, reasonCode: number): void;
  /** A PUBLISH from the remote (inbound rules); already acknowledged per its QoS. */
  message(msg: InboundMessage): void;
  /** The socket can take more writes again after `publish` returned false. */
  writable(): void;
  /** An attempt to connect failed (TCP, TLS, CONNACK refused, timeout); the next is scheduled. */
  attemptFailed?(sentence: string, key: string): void;
  /**
   * A PINGRESP came: the remote has read everything sent before the PINGREQ numbered `barrier`
   * (see Upstream.barrier), QoS 0 publishes included. Numbers start again on each connection.
   */
  passed?(barrier: number): void;
}

export interface Upstream {
  readonly connected: boolean;
  /** Since when the link has been down with nothing scheduled to retry (see core/progress.ts); optional for test doubles. */
  waitingSince?(): number | undefined;
  /** The wall clock stepped (core/clock-steps.ts): the link's keepalive stamps move with it; optional for test doubles. */
  clockStepped?(deltaMs: number): void;
  /** Starts connecting (and reconnecting with backoff until stop). */
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  /**
   * Sends a PUBLISH on the current connection. Returns false, and sends nothing, when the
   * socket buffer is above its high-water mark (wait for `writable`) or there is no
   * connection (wait for `up`).
   */
  publish(p: UpstreamPublish): boolean;
  /** SUBSCRIBE on the current connection (inbound rules); resolves with the granted codes. */
  subscribe(filters: { topic: string; qos: QoS; noLocal?: boolean; retainAsPublished?: boolean }[]): Promise<number[]>;
  /** UNSUBSCRIBE on the current connection; resolves with the codes (all 0 from a 3.1.1 remote). */
  unsubscribe(filters: string[]): Promise<number[]>;
  /**
   * Sends a PINGREQ behind everything sent so far on the current connection and returns its
   * number (undefined when not connected); `passed` reports it answered. A broker handles a
   * connection's packets in order, so the answer acknowledges QoS 0 publishes sent before it.
   */
  barrier?(): number | undefined;
  /** Publishes the bridge state (online) retained; not through the outbox. */
  publishDirect(topic: string, payload: Buffer, qos: QoS, retain: boolean): void;
}
