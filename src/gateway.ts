/**
 * Composition root: the only place concrete classes are created and wired.
 *
 *   listeners (mqtt/mqtts/ws/wss) ─▶ Broker (the bus) ─▶ Bridge(s) ─▶ SQLite outbox ─▶ Upstream (TLS) ─▶ cloud
 *   MQTT-SN (UDP) ──────────────────▶    ▲
 *   serial ports ───────────────────▶    ▲   (SerialHost: framers, drivers, device maps)
 *
 * Start order: state directory, store, bridges (their outbox sinks must be in place
 * before any client can publish), broker, MQTT-SN gateway, listeners. Stop order is the reverse:
 * listeners stop accepting, the broker closes its clients (no more publishes), the
 * bridges disconnect from the cloud, the store commits what is pending and closes.
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config, ListenerConfig } from './config/schema.js';
import type { Clock } from './core/clock.js';
import { OutpostError } from './core/errors.js';
import { ServiceGroup, type Service } from './core/lifecycle.js';
import type { ProgressProbe } from './core/progress.js';
import { Broker } from './broker/broker.js';
import type { BrokerOptions } from './broker/options.js';
import { TcpListener } from './broker/tcp-listener.js';
import { TlsListener } from './broker/tls-listener.js';
import { WsListener } from './broker/ws-listener.js';
import type { StreamHandler } from './broker/listen.js';
import { anonymousPolicyLine, isLoopbackHost } from './broker/anonymous-policy.js';
import { Bridge } from './bridge/bridge.js';
import { bridgeSettings, checkTlsFiles } from './bridge/settings.js';
import { UpstreamClient } from './bridge/upstream-client.js';
import { lockStateDir, openDatabase, type StoreDatabase } from './store/database.js';
import { SqliteOutbox } from './store/sqlite-outbox.js';
import { createMqttsnGateway } from './mqttsn/create.js';
import type { MqttsnGateway } from './mqttsn/gateway.js';
import { systemClock } from './core/clock.js';
import { SerialHost } from './serial/host.js';
import type { PortOpener } from './serial/port.js';
import { serialportOpener } from './serial/port-adapter.js';
import { driverRegistry } from '../drivers/index.js';

export interface GatewayDeps {
  log: Logger;
  clock?: Clock;
  /** Serial port access; default serialport (tests may hand in-memory ports). */
  serialPorts?: PortOpener;
  /** Extra progress probes watched beside the components' own (tests inject a stuck one). */
  probes?: readonly ProgressProbe[];
}

/** A listener: a service that accepts connections for the broker on a bound address. */
export interface Listener extends Service {
  readonly address: { host: string; port: number };
}

/** One listener per config entry, by kind. */
export function createListener(l: ListenerConfig, index: number, config: Config, target: StreamHandler, log: Logger): Listener {
  const where = `listeners[${index}]`;
  const handshakeTimeoutMs = config.broker.connect_timeout;
  switch (l.type) {
    case 'mqtt':
      return new TcpListener(l.host, l.port, target, log);
    case 'mqtts':
      return new TlsListener(l, where, target, log, { handshakeTimeoutMs });
    case 'ws':
    case 'wss':
      return new WsListener(l, where, target, log, { handshakeTimeoutMs, maxPayload: config.broker.max_packet_size });
  }
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
  readonly mqttsn: MqttsnGateway | undefined;
  readonly serial: SerialHost;
  private readonly listeners: Listener[];
  private readonly group: ServiceGroup;

  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {
    const log = deps.log;
    this.broker = new Broker(brokerOptionsFrom(config), { log: log.child({ component: 'broker' }), clock: deps.clock });
    // Safe default: beyond loopback, only authenticated clients (see anonymous-policy.ts).
    const guarded: StreamHandler = { handle: (stream, peer) => this.broker.handle(stream, { ...peer, refuseAnonymous: true }) };
    this.listeners = config.listeners.map((l, i) => {
      const target = !config.auth.allow_anonymous && !isLoopbackHost(l.host) ? guarded : this.broker;
      return createListener(l, i, config, target, log.child({ component: 'listener', listener: `${l.type}://${l.host}:${l.port}` }));
    });
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
    // MQTT-SN sensors are in-process sessions on the broker: after it, with the listeners.
    this.mqttsn = config.mqttsn === undefined ? undefined
      : createMqttsnGateway(config.mqttsn, { bus: this.broker, log: log.child({ component: 'mqttsn' }), clock: deps.clock });
    // Serial devices publish into the broker (and through it the bridge outbox): after it, before the listeners.
    this.serial = new SerialHost(config.serial, {
      bus: this.broker,
      log: log.child({ component: 'serial' }),
      opener: deps.serialPorts ?? serialportOpener,
      drivers: driverRegistry(),
      clock: deps.clock,
    });
    this.group = new ServiceGroup([stateDir, ...this.storeAndBridges(), this.broker, ...(this.mqttsn ? [this.mqttsn] : []), this.serial, ...this.listeners]);
  }

  private dirLock: { release(): void } | undefined;
  private db: StoreDatabase | undefined;
  private outbox: SqliteOutbox | undefined;
  readonly bridges: Bridge[] = [];

  /**
   * The store is opened only when a bridge needs it; bridges are built once it is
   * open (their constructors need the outbox, and opening a database is I/O).
   */
  private storeAndBridges(): Service[] {
    const { config } = this;
    if (config.bridges.length === 0) return [];
    const log = this.deps.log;
    const clock = this.deps.clock ?? systemClock;
    const store: Service = {
      name: 'store',
      start: async () => {
        // The database is the state a second gateway must not share (it would drain the
        // same outbox twice): lock the directory before opening it.
        this.dirLock = lockStateDir(config.store.dir);
        try {
          this.db = openDatabase({ dir: config.store.dir, synchronous: config.store.synchronous, log: log.child({ component: 'store' }), clock });
        } catch (err) {
          this.dirLock.release();
          this.dirLock = undefined;
          throw err;
        }
        this.outbox = new SqliteOutbox({ db: this.db, clock, log: log.child({ component: 'outbox' }), commitWindowMs: config.store.commit_window });
      },
      stop: async () => {
        await this.outbox?.close();
        this.db?.close();
        this.outbox = undefined;
        this.db = undefined;
        this.dirLock?.release();
        this.dirLock = undefined;
      },
    };
    const bridges: Service = {
      name: 'bridges',
      start: async (signal) => {
        const group: Bridge[] = [];
        config.bridges.forEach((b, i) => {
          checkTlsFiles(b, i);
          const blog = log.child({ component: 'bridge', bridge: b.name });
          group.push(
            new Bridge(bridgeSettings(b, i), {
              bus: this.broker,
              outbox: this.outbox!,
              log: blog,
              clock,
              createUpstream: (options, events) => new UpstreamClient(options, events, { log: blog, clock }),
            }),
          );
        });
        for (const bridge of group) {
          await bridge.start(signal);
          this.bridges.push(bridge);
        }
      },
      stop: async () => {
        while (this.bridges.length > 0) await this.bridges.pop()!.stop();
      },
    };
    return [store, bridges];
  }

  /** Sizes of the SQLite database file and its WAL; undefined while no store is open. */
  storeFiles(): { db: number; wal: number } | undefined {
    return this.db?.diskBytes();
  }

  /** What the watchdog and /healthz ask whether every component still turns. */
  get progressProbes(): ProgressProbe[] {
    return [
      this.broker.progress,
      ...(this.outbox ? [this.outbox.progress] : []),
      ...this.bridges.flatMap((b) => b.progressProbes),
      this.serial.progress,
      ...(this.mqttsn ? [this.mqttsn.progress] : []),
      ...(this.deps.probes ?? []),
    ];
  }

  /** Addresses actually bound (port 0 in config resolves to a real port). */
  get addresses(): ListenerAddress[] {
    return this.listeners.map((l, i) => ({ type: this.config.listeners[i]!.type, ...l.address }));
  }

  async start(signal: AbortSignal): Promise<void> {
    this.deps.log.debug('starting gateway');
    const anon = anonymousPolicyLine(this.config.listeners, this.config.auth.allow_anonymous);
    if (anon !== undefined) this.deps.log[anon.level]({ listeners: anon.listeners }, anon.msg);
    await this.group.start(signal);
  }

  async stop(): Promise<void> {
    await this.group.stop();
  }
}
