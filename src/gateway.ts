/**
 * Composition root: the only place concrete classes are created and wired.
 *
 *   config ─▶ Broker (bus) ◀── TcpListener(s)
 *
 * Start order: broker, then listeners. Stop order is the reverse: listeners stop
 * accepting, the broker says goodbye to its clients.
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Clock } from './core/clock.js';
import { OutpostError } from './core/errors.js';
import { ServiceGroup, type Service } from './core/lifecycle.js';
import { Broker } from './broker/broker.js';
import type { BrokerOptions } from './broker/options.js';
import { TcpListener } from './broker/tcp-listener.js';

export interface GatewayDeps {
  log: Logger;
  clock?: Clock;
}

export interface ListenerAddress {
  type: string;
  host: string;
  port: number;
}

export function brokerOptionsFrom(config: Config): Partial<BrokerOptions> {
  const b = config.broker;
  return {
    connectTimeoutMs: b.connect_timeout,
    maxPacketSize: b.max_packet_size,
    maxKeepalive: Math.round(b.max_keepalive / 1000),
    receiveMaximum: b.receive_maximum,
    maxInflight: b.max_inflight,
    maxQueuedMessages: b.max_queued_messages,
    maxQueuedBytes: b.max_queued_bytes,
    topicAliasMaximum: b.topic_alias_maximum,
    maxTopicLevels: b.max_topic_levels,
    retainAvailable: b.retain_available,
    maxSessionExpiry: Math.round(b.max_session_expiry / 1000),
    allowEmptyClientId: b.allow_empty_client_id,
    maxConnections: b.max_connections,
  };
}

export class Gateway {
  readonly broker: Broker;
  private readonly listeners: TcpListener[];
  private readonly group: ServiceGroup;

  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {
    const log = deps.log;
    this.broker = new Broker(brokerOptionsFrom(config), { log: log.child({ component: 'broker' }), clock: deps.clock });
    this.listeners = config.listeners.map(
      (l) => new TcpListener(l.host, l.port, this.broker, log.child({ component: 'listener', listener: `${l.type}://${l.host}:${l.port}` })),
    );
    const stateDir: Service = {
      name: 'state directory',
      start: async () => {
        try {
          mkdirSync(this.config.store.dir, { recursive: true });
        } catch (err) {
          throw new OutpostError('STORE_UNAVAILABLE', `state directory ${this.config.store.dir} cannot be created (${(err as Error).message}); fix store.dir or its permissions`, { cause: err });
        }
      },
      stop: async () => {},
    };
    this.group = new ServiceGroup([stateDir, this.broker, ...this.listeners]);
  }

  /** Addresses actually bound (port 0 in config resolves to a real port). */
  get addresses(): ListenerAddress[] {
    return this.listeners.map((l, i) => ({ type: this.config.listeners[i]!.type, ...l.address }));
  }

  async start(signal: AbortSignal): Promise<void> {
    this.deps.log.debug('starting gateway');
    await this.group.start(signal);
  }

  async stop(): Promise<void> {
    await this.group.stop();
  }
}
