/** Broker settings in plain units (ms, bytes). The gateway maps the config onto these. */
export interface BrokerOptions {
  /** Time a new connection may take to send CONNECT. */
  connectTimeoutMs: number;
  /** Largest packet accepted from clients; announced to v5 clients in CONNACK. */
  maxPacketSize: number;
  /** Server Keep Alive cap in seconds (0 = none). */
  maxKeepalive: number;
  /** QoS 1/2 publishes a client may have unacknowledged towards us [MQTT-3.3.4-7]. */
  receiveMaximum: number;
  /** Our outgoing QoS 1/2 window per client (lowered by the client's Receive Maximum). */
  maxInflight: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  topicAliasMaximum: number;
  maxTopicLevels: number;
  retainAvailable: boolean;
  /** Cap on Session Expiry Interval in seconds; also the lifetime of v3.1.1 persistent sessions. */
  maxSessionExpiry: number;
  allowEmptyClientId: boolean;
  /** 0 = unlimited. */
  maxConnections: number;
  /** Simultaneous connections from one source address; 0 = unlimited. */
  maxConnectionsPerAddress: number;
  /** New connections per second from one source address (token bucket); 0 = unlimited. */
  connectRate: number;
  /** Connections one source address may open at once before connectRate applies. */
  connectBurst: number;
  /** Socket bytes buffered for a client before it counts as slow and messages queue instead. */
  socketHighWater: number;
}

export const defaultBrokerOptions: BrokerOptions = {
  connectTimeoutMs: 10_000,
  maxPacketSize: 1024 * 1024,
  maxKeepalive: 0,
  receiveMaximum: 1000,
  maxInflight: 100,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 16 * 1024 * 1024,
  topicAliasMaximum: 32,
  maxTopicLevels: 64,
  retainAvailable: true,
  maxSessionExpiry: 7 * 24 * 3600,
  allowEmptyClientId: true,
  maxConnections: 0,
  maxConnectionsPerAddress: 0,
  connectRate: 0,
  connectBurst: 10,
  socketHighWater: 256 * 1024,
};
