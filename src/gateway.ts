/**
 * Composition root: the only place concrete classes are created and wired.
 *
 *   listeners (mqtt/mqtts/ws/wss) ─▶ Broker (the bus) ─▶ Bridge(s) ─▶ SQLite outbox ─▶ Upstream (TLS) ─▶ cloud
 *   MQTT-SN (UDP) ──────────────────▶    ▲
 *   serial ports ───────────────────▶    ▲   (SerialHost: framers, drivers, device maps)
 *
 * Start order: state directory, store (always: it also keeps persistent sessions and
 * retained messages), bridges (their outbox sinks must be in place before any client can
 * publish), broker (restores the stored state), MQTT-SN gateway, listeners. Stop order is the reverse:
 * listeners stop accepting, the broker closes its clients (no more publishes), the
 * bridges disconnect from the cloud, the store commits what is pending and closes.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BridgeConfig, Config, ListenerConfig } from './config/schema.js';
import type { Clock } from './core/clock.js';
import { ServiceGroup, type Service } from './core/lifecycle.js';
import type { ProgressProbe } from './core/progress.js';
import { Broker } from './broker/broker.js';
import type { BrokerOptions } from './broker/options.js';
import type { BrokerMetrics } from './broker/metrics.js';
import { TcpListener } from './broker/tcp-listener.js';
import { TlsListener } from './broker/tls-listener.js';
import { WsListener, wsMessageLimit } from './broker/ws-listener.js';
import type { StreamHandler } from './broker/listen.js';
import { anonymousPolicyLine, isLoopbackHost } from './broker/anonymous-policy.js';
import { Bridge } from './bridge/bridge.js';
import { bridgeSettings, checkTlsFiles } from './bridge/settings.js';
import { UpstreamClient } from './bridge/upstream-client.js';
import { lockStateDir, openDatabase, type StoreDatabase } from './store/database.js';
import { stateDirFailure } from './store/dir-access.js';
import { SqliteOutbox } from './store/sqlite-outbox.js';
import { CommitHealth } from './store/commit-health.js';
import { DiskReserve } from './store/reserve.js';
import { ensureDir } from './store/ensure-dir.js';
import { SqliteStateJournal } from './store/state-journal.js';
import { JournalSnQueue } from './store/sn-queue.js';
import { SqliteSnSessions } from './store/sn-sessions.js';
import { SqliteInboundQos2 } from './store/inbound-qos2.js';
import { SqliteRemoteFilters } from './store/remote-filters.js';
import { createMqttsnGateway } from './mqttsn/create.js';
import type { MqttsnGateway } from './mqttsn/gateway.js';
import { systemClock } from './core/clock.js';
import { formatStep, StampMover, StepCheckedClock, type MonotonicNow } from './core/clock-steps.js';
import { SerialHost } from './serial/host.js';
import type { PortOpener } from './serial/port.js';
import { serialportOpener } from './serial/port-adapter.js';
import { driverRegistry } from '../drivers/index.js';
import type { ReloadStep } from './reload/step.js';
import { bridgesStep } from './reload/bridges-step.js';
import { serialStep } from './reload/serial-step.js';
import { mqttsnStep } from './reload/mqttsn-step.js';
import { authStep } from './reload/auth-step.js';
import { listenerTlsStep } from './reload/listener-tls-step.js';
import { loadAccessControl } from './auth/access-control.js';
import { CertificateExpiry } from './observability/certificate-expiry.js';
import type { Sample } from './observability/prometheus.js';

export interface GatewayDeps {
  log: Logger;
  clock?: Clock;
  /** Serial port access; default serialport (tests may hand in-memory ports). */
  serialPorts?: PortOpener;
  /** The config file, for auth.password_file / auth.acl_file relative to it (default: the working directory). */
  configFile?: string;
  /**
   * A clock that never steps (default performance.now() when `clock` is the system clock;
   * none with an injected clock, unless given): steps of the wall clock are seen against it
   * (core/clock-steps.ts). Tests hand one with a clock whose wall time they step.
   */
  monotonic?: MonotonicNow;
  /** Extra progress probes watched beside the components' own (tests inject a stuck one). */
  probes?: readonly ProgressProbe[];
}

/** A listener: a service that accepts connections for the broker on a bound address. */
export interface Listener extends Service {
  readonly address: { host: string; port: number };
  /** mqtts and wss: re-reads the TLS files now (SIGHUP). */
  reloadTls?(): 'reloaded' | 'unchanged' | 'failed';
}

/** One listener per config entry, by kind. */
export function createListener(l: ListenerConfig, index: number, config: Config, target: StreamHandler, log: Logger, metrics?: BrokerMetrics, certificates?: CertificateExpiry): Listener {
  const where = `listeners[${index}]`;
  const handshakeTimeoutMs = config.broker.connect_timeout;
  switch (l.type) {
    case 'mqtt':
      return new TcpListener(l.host, l.port, target, log);
    case 'mqtts':
      return new TlsListener(l, where, target, log, { handshakeTimeoutMs, ...(certificates ? { certificates } : {}), ...(metrics ? { onTlsRefused: (r) => metrics.tlsRefused.add(r) } : {}) });
    case 'ws':
    case 'wss':
      return new WsListener(l, where, target, log, {
        handshakeTimeoutMs,
        maxPayload: wsMessageLimit(config.broker.max_packet_size),
        ...(certificates ? { certificates } : {}),
        ...(metrics ? { onOriginRefused: () => void metrics.originsRefused++, onTlsRefused: (r) => metrics.tlsRefused.add(r), onPingFlood: () => metrics.violation('websocket-ping-flood') } : {}),
      });
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
    maxConnectionsPerAddress: b.max_connections_per_address,
    connectRate: b.connect_rate,
    connectBurst: b.connect_burst,
  };
}

export class Gateway {
  readonly broker: Broker;
  readonly mqttsn: MqttsnGateway | undefined;
  readonly serial: SerialHost;
  private readonly listeners: Listener[];
  private readonly group: ServiceGroup;
  /** The clock every component gets: the wall clock, step-checked when a monotonic clock is known. */
  private readonly clock: Clock;
  private readonly steps: StepCheckedClock | undefined;
  /** Expiry of the listeners' and bridges' certificates (/metrics, and the lines when one runs out). */
  private readonly certificates: CertificateExpiry;

  constructor(
    private readonly config: Config,
    private readonly deps: GatewayDeps,
  ) {
    const log = deps.log;
    const mono = deps.monotonic ?? (deps.clock === undefined ? () => performance.now() : undefined);
    this.steps = mono === undefined ? undefined : new StepCheckedClock(deps.clock ?? systemClock, mono);
    this.clock = this.steps ?? deps.clock ?? systemClock;
    this.broker = new Broker(brokerOptionsFrom(config), { log: log.child({ component: 'broker' }), clock: this.clock });
    // A bridge removed by a reload takes its certificates off the gauge.
    this.certificates = new CertificateExpiry({ clock: this.clock, live: (s) => s.owner['bridge'] === undefined || this.bridges.some((b) => b.name === s.owner['bridge']) });
    // Safe default: beyond loopback, only authenticated clients (see anonymous-policy.ts).
    const guarded: StreamHandler = {
      handle: (stream, peer) => this.broker.handle(stream, { ...peer, refuseAnonymous: true }),
      admitHandshake: (peer) => this.broker.admitHandshake(peer),
      handshakeClosed: (peer) => this.broker.handshakeClosed(peer),
    };
    this.listeners = config.listeners.map((l, i) => {
      const base: StreamHandler = !config.auth.allow_anonymous && !isLoopbackHost(l.host) ? guarded : this.broker;
      // Each connection carries its listener, for outpost_listener_connections{type,address}.
      const listener = `${l.type} ${l.host}:${l.port}`;
      this.broker.metrics.listenerConnections.set(listener, 0);
      this.broker.metrics.listenerConnectionsTotal.set(listener, 0);
      const target: StreamHandler = {
        handle: (stream, peer) => base.handle(stream, { ...peer, listener }),
        admitHandshake: (peer) => this.broker.admitHandshake(peer),
        handshakeClosed: (peer) => this.broker.handshakeClosed(peer),
      };
      return createListener(l, i, config, target, log.child({ component: 'listener', listener: `${l.type}://${l.host}:${l.port}` }), this.broker.metrics, this.certificates);
    });
    const stateDir: Service = {
      name: 'state directory',
      start: async () => {
        try {
          ensureDir(this.config.store.dir);
        } catch (err) {
          const dir = this.config.store.dir;
          throw stateDirFailure(`state directory ${dir} cannot be created`, dir, (err as Error).message, (err as NodeJS.ErrnoException).code, err);
        }
      },
      stop: async () => {},
    };
    // MQTT-SN sensors are in-process sessions on the broker: after it, with the listeners.
    this.mqttsn = config.mqttsn === undefined ? undefined
      : createMqttsnGateway(config.mqttsn, { bus: this.broker, authorizer: this.broker, log: log.child({ component: 'mqttsn' }), clock: this.clock, maxTopicLevels: config.broker.max_topic_levels });
    // Serial devices publish into the broker (and through it the bridge outbox): after it, before the listeners.
    this.serial = new SerialHost(config.serial, {
      bus: this.broker,
      authorizer: this.broker,
      log: log.child({ component: 'serial' }),
      opener: deps.serialPorts ?? serialportOpener,
      drivers: driverRegistry(),
      clock: this.clock,
    });
    // The password file and ACL are read first: a bad one stops start-up before anything is bound.
    const access: Service = {
      name: 'access control',
      start: async () => {
        if (config.auth.password_file === undefined && config.auth.acl_file === undefined) return;
        const ac = await loadAccessControl(config.auth, deps.configFile);
        this.broker.setAccessControl(ac);
        log.info({ passwordFile: config.auth.password_file, aclFile: config.auth.acl_file }, 'access control loaded');
        for (const w of ac.warnings) log.warn(w); // a file others may read, no users: said at start and at each reload
      },
      stop: async () => {},
    };
    const certificateChecks: Service = { name: 'certificate expiry checks', start: async () => this.certificates.start(), stop: async () => this.certificates.stop() };
    this.group = new ServiceGroup([this.clockStepsService(), certificateChecks, access, stateDir, ...this.storeAndBridges(), this.broker, ...(this.mqttsn ? [this.mqttsn] : []), this.serial, ...this.listeners]);
  }

  private dirLock: { release(): void } | undefined;
  private db: StoreDatabase | undefined;
  private outbox: SqliteOutbox | undefined;
  private commitHealth: CommitHealth | undefined;
  private journal: SqliteStateJournal | undefined;
  private snSessions: SqliteSnSessions | undefined;
  /** Inbound QoS 2 exchanges of the bridges (store/inbound-qos2.ts). */
  private inboundQos2: SqliteInboundQos2 | undefined;
  /** The running bridges; a reload adds, replaces and removes entries in place. */
  readonly bridges: Bridge[] = [];
  private startSignal: AbortSignal = new AbortController().signal;

  /**
   * Watches the wall clock for steps (core/clock-steps.ts) while the gateway runs: each one
   * is logged once and moves the stamps every component took before it.
   */
  private clockStepsService(): Service {
    let off: (() => void) | undefined;
    return {
      name: 'clock steps',
      start: async () => {
        if (this.steps === undefined) return;
        off = this.steps.onStep((d) => this.clockStepped(d));
        this.steps.start();
      },
      stop: async () => {
        this.steps?.stop();
        off?.();
        off = undefined;
      },
    };
  }

  private clockStepped(deltaMs: number): void {
    const way = deltaMs > 0 ? 'forward' : 'back';
    this.deps.log.warn({ stepMs: deltaMs }, `wall clock stepped ${way} by ${formatStep(deltaMs)}; stored ages and expiry deadlines moved with it`);
    this.outbox?.clockStepped(deltaMs);
    for (const b of this.bridges) b.clockStepped(deltaMs);
    const mover = new StampMover(deltaMs); // one per step: broker and MQTT-SN share messages
    this.broker.clockStepped(mover);
    this.mqttsn?.clockStepped(mover);
    this.serial.clockStepped(deltaMs);
  }

  /** When each certificate in use expires, for /metrics. */
  certificateExpiry(): readonly Sample[] {
    return this.certificates.samples();
  }

  /** Steps of the wall clock seen so far; undefined when they are not watched (an injected clock). */
  clockSteps(): { steps: number; lastStepMs: number } | undefined {
    return this.steps === undefined ? undefined : { steps: this.steps.steps, lastStepMs: this.steps.lastStepMs };
  }

  /**
   * The store is always opened (the outbox, persistent sessions and retained messages
   * share its file and its commits); bridges are built once it is open (their
   * constructors need the outbox, and opening a database is I/O).
   */
  private storeAndBridges(): Service[] {
    const store: Service = {
      name: 'store',
      start: async () => {
        this.openStore();
      },
      stop: async () => {
        this.broker.attachJournal(undefined);
        this.mqttsn?.attachStore(undefined);
        await this.outbox?.close(); // commits what the journal still holds, too
        this.journal?.close();
        this.journal = undefined;
        this.snSessions?.close();
        this.snSessions = undefined;
        this.inboundQos2 = undefined;
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
        this.startSignal = signal;
        const group = this.config.bridges.map((b, i) => this.createBridge(b, i));
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

  /**
   * Opens the store (once): the directory lock first, then the database, its outbox and the
   * journal of persistent sessions and retained messages, which commits with the outbox.
   */
  private openStore(): { outbox: SqliteOutbox; db: StoreDatabase } {
    if (this.outbox !== undefined && this.db !== undefined) return { outbox: this.outbox, db: this.db };
    const { config } = this;
    const log = this.deps.log;
    // The database is the state a second gateway must not share (it would drain the
    // same outbox twice, and two brokers would write the same sessions): lock the
    // directory before opening it.
    this.dirLock = lockStateDir(config.store.dir);
    try {
      this.db = openDatabase({ dir: config.store.dir, synchronous: config.store.synchronous, log: log.child({ component: 'store' }), clock: this.clock });
    } catch (err) {
      this.dirLock.release();
      this.dirLock = undefined;
      throw err;
    }
    const storeLog = log.child({ component: 'outbox' });
    const reserve = new DiskReserve(join(config.store.dir, 'outpost.reserve'), config.store.reserve, storeLog);
    reserve.ensure();
    const health = (this.commitHealth = new CommitHealth(this.clock));
    this.outbox = new SqliteOutbox({
      db: this.db, clock: this.clock, log: storeLog, commitWindowMs: config.store.commit_window, commitDelayMs: config.store.commit_delay, reserve,
      onCommit: () => health.committed(), onCommitFailed: (err) => health.failed(err),
    });
    const { persist_sessions: persistSessions, persist_retained: persistRetained } = config.store;
    this.journal = new SqliteStateJournal({ db: this.db, persistSessions, persistRetained });
    this.journal.attach(this.outbox.join(this.journal));
    this.inboundQos2 = new SqliteInboundQos2(this.db);
    this.inboundQos2.attach(this.outbox.join(this.inboundQos2));
    this.broker.attachJournal(this.journal);
    if (!persistSessions) SqliteSnSessions.forgetAll(this.db);
    else if (this.mqttsn !== undefined) {
      this.snSessions = new SqliteSnSessions(this.db);
      this.snSessions.attach(this.outbox.join(this.snSessions));
      const clock = this.clock;
      this.mqttsn.attachStore(this.snSessions, new JournalSnQueue(this.journal, () => clock.now()));
    }
    return { outbox: this.outbox, db: this.db };
  }

  /** A bridge for one `bridges[index]` entry, not started (TLS files are read once to check them). */
  private createBridge(b: BridgeConfig, index: number): Bridge {
    checkTlsFiles(b, index);
    const blog = this.deps.log.child({ component: 'bridge', bridge: b.name });
    this.certificates.forget({ bridge: b.name }); // a cert or ca no longer set leaves the gauge
    const settings = bridgeSettings(b, index, { certificates: this.certificates, log: blog });
    const clock = this.clock;
    const { outbox, db } = this.openStore();
    const inboundQos2 = this.inboundQos2!.forBridge(b.name);
    return new Bridge(settings, {
      bus: this.broker,
      authorizer: this.broker,
      outbox,
      remoteFilters: new SqliteRemoteFilters(db),
      log: blog,
      clock,
      createUpstream: (options, events) => new UpstreamClient({ ...options, inboundQos2 }, events, { log: blog, clock }),
    });
  }

  /**
   * The live-reload steps (src/reload/), in the order they apply. `configFile` is the file
   * the config came from (paths in it are relative to it).
   */
  reloadSteps(configFile: string | undefined): ReloadStep[] {
    return [
      authStep({ setAccessControl: (ac) => this.broker.setAccessControl(ac), configFile, warn: (m) => this.deps.log.warn(m) }),
      bridgesStep({ bus: this.broker, bridges: this.bridges, createBridge: (b, i) => this.createBridge(b, i), signal: () => this.startSignal }),
      serialStep(this.serial),
      mqttsnStep(this.mqttsn),
      listenerTlsStep(this.listeners.map((l, i) => ({ where: `listeners[${i}]`, reloadTls: () => l.reloadTls?.() ?? 'unchanged' }))),
    ];
  }

  /** Sizes of the SQLite database file and its WAL, and the commits so far; undefined while no store is open. */
  /** 'ok', or why the store acknowledges nothing (commit-health.ts); undefined before it opened. */
  storeHealth(): string | undefined {
    return this.commitHealth?.state();
  }

  storeFiles(): { db: number; wal: number; commits: number } | undefined {
    return this.db === undefined ? undefined : { ...this.db.diskBytes(), commits: this.outbox?.commits ?? 0 };
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
