/**
 * The whole gateway at once, as a field site runs it: one real outpost process with
 *
 *   MQTT clients (3.1.1 and 5, ──┐
 *     some persistent)           │
 *   MQTT-SN sensors (UDP, ───────┼──▶ outpost ──TLS, mTLS──▶ FaultProxy ──▶ Mosquitto "cloud"
 *     some sleeping)             │      │  SQLite outbox                        │
 *   serial: line-json, nmea,     │      ├─ /metrics                    CloudObserver (cloud/17/#)
 *     modbus-rtu (socat ptys) ───┘      └─▶ a persistent local subscriber (site/#, QoS 1)
 *
 * and the faults a site lives through: kill -9 of outpost, uplink drops, stalls (zombie links)
 * and slow links, the cloud broker restarting, a serial cable pulled, sensors coming back from
 * new UDP ports. The test (test/system/whole-gateway.test.ts) runs a short version; the soak
 * (scripts/soak.ts, `npm run soak`) a long one with figures.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCerts } from '../../helpers/certs.js';
import { CloudObserver, type CloudMessage } from '../../helpers/cloud-observer.js';
import { FaultProxy } from '../../helpers/fault-proxy.js';
import { memory, ModbusSlaveSim, type SlaveMemory } from '../../helpers/modbus-slave.js';
import { Mosquitto, freePort } from '../../helpers/mosquitto.js';
import { OutpostProcess } from '../../helpers/outpost-process.js';
import { PtyLab } from '../../helpers/pty.js';
import { checkAll, type SourceCheck } from './checker.js';
import { ggaLine, lineJson, MqttSource, PtySource, SnSource, type StampedSource } from './sources.js';

export const REMOTE_PREFIX = 'cloud/17/';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ScenarioSize {
  mqttClients: number;
  snSensors: number;
  /** Messages per second of each MQTT client and sensor. */
  ratePerSource: number;
  /** Readings per second of each serial device. */
  serialRate: number;
  /** The bridge's inflight window (the most duplicates one crash or flap may cause per window). */
  inflight: number;
  /** Bridge keepalive in seconds (zombie links must be found within two of them). */
  keepaliveSec: number;
  /** The state directory (default: under the scenario's temporary directory), e.g. a small tmpfs. */
  storeDir?: string;
  /** store.reserve (default: the gateway's default). */
  storeReserve?: string;
  /** store.commit_window (default: the gateway's default). */
  commitWindow?: string;
  /** store.commit_delay (default: the gateway's default). */
  commitDelay?: string;
  /** Payload size of MQTT and MQTT-SN messages (the number padded with spaces); default: just the digits. */
  pad?: number;
  /** Run the built dist/src/main.js (npm run build first) instead of the TypeScript sources. */
  built?: boolean;
}

export class WholeGateway {
  readonly dir = mkdtempSync(join(tmpdir(), 'outpost-system-'));
  readonly cloud = new Mosquitto({ requireCertificate: true, persistence: true });
  readonly lab = new PtyLab();
  readonly mqtt: MqttSource[] = [];
  readonly sensors: SnSource[] = [];
  readonly serial: PtySource[] = [];
  proxy!: FaultProxy;
  observer!: CloudObserver;
  outpost: OutpostProcess | undefined;
  readonly config = join(this.dir, 'outpost.yaml');
  port = 0;
  snPort = 0;
  metricsPort = 0;
  crashes = 0;
  /** What the persistent local subscriber got (it reconnects after every restart). */
  readonly local: CloudMessage[] = [];
  private localClient: MqttClient | undefined;
  private modbus: ModbusSlaveSim | undefined;
  private modbusTimer: NodeJS.Timeout | undefined;
  private meter: SlaveMemory = memory();

  constructor(readonly size: ScenarioSize) {}

  get sources(): StampedSource[] {
    return [...this.mqtt, ...this.sensors, ...this.serial];
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Cloud, proxy, ptys and the config file; outpost is not started yet. */
  async prepare(): Promise<void> {
    const certs = testCerts();
    await this.cloud.start();
    this.observer = await CloudObserver.connect(this.cloud, [`${REMOTE_PREFIX}#`]);
    this.proxy = new FaultProxy(this.cloud.tlsPort);
    await this.proxy.start();
    [this.port, this.snPort, this.metricsPort] = [await freePort(), await freePort(), await freePort()];

    const lj = await this.lab.pty('lj-1');
    const gps = await this.lab.pty('gps-1');
    const bus = await this.lab.pty('rs485-1');
    const sim = new ModbusSlaveSim((b) => void bus.write(b).catch(() => undefined));
    bus.onReceive((b) => sim.feed(b));
    sim.slaves.set(1, this.meter);
    this.modbus = sim;
    // The meter's energy register counts up; the gateway polls it.
    this.modbusTimer = setInterval(() => (this.meter.input[0] = (this.meter.input[0]! + 1) & 0xffff), 100);

    this.serial.push(
      new PtySource('serial-lj-1', 'site/serial/lj-1/seq', lj, lineJson, this.size.serialRate),
      new PtySource('serial-gps-1', 'site/serial/gps-1/altitude', gps, ggaLine, this.size.serialRate),
    );
    // Every third MQTT client keeps a persistent session; every fourth sensor sleeps between readings.
    for (let i = 0; i < this.size.mqttClients; i++) this.mqtt.push(new MqttSource(`mqtt-${i}`, i % 2 === 0 ? 4 : 5, this.size.ratePerSource, this.size.pad, i % 3 === 1));
    for (let i = 0; i < this.size.snSensors; i++) this.sensors.push(new SnSource(`sn-${i}`, this.size.ratePerSource, this.size.pad, i % 4 === 3));

    const ka = this.size.keepaliveSec;
    writeFileSync(
      this.config,
      JSON.stringify(
        {
          listeners: [{ type: 'mqtt', host: '127.0.0.1', port: this.port }],
          log: { format: 'json', level: 'info' },
          store: { dir: this.storeDir, synchronous: 'full', ...(this.size.storeReserve !== undefined ? { reserve: this.size.storeReserve } : {}), ...(this.size.commitWindow !== undefined ? { commit_window: this.size.commitWindow } : {}), ...(this.size.commitDelay !== undefined ? { commit_delay: this.size.commitDelay } : {}) },
          metrics: { enabled: true, host: '127.0.0.1', port: this.metricsPort },
          mqttsn: { hosts: ['127.0.0.1'], port: this.snPort, max_clients: 100_000 },
          serial: {
            devices: [
              { id: 'lj-1', port: lj.path, driver: 'line-json', topic: 'site/serial/{device}/{metric}' },
              { id: 'gps-1', port: gps.path, driver: 'nmea', topic: 'site/serial/{device}/{metric}' },
              {
                id: 'meter-1',
                port: bus.path,
                driver: 'modbus-rtu',
                topic: 'site/serial/{device}/{metric}',
                options: { slave_id: 1, poll_interval: '200ms', timeout: '150ms', retries: 1, registers: [{ name: 'energy', table: 'input', address: 0 }] },
              },
            ],
          },
          bridges: [
            {
              name: 'cloud',
              url: `mqtts://127.0.0.1:${this.proxy.port}`,
              client_id: 'site-17',
              ca: certs.ca.crt,
              cert: certs.client.crt,
              key: certs.client.key,
              keepalive: `${ka}s`,
              connect_timeout: '2s',
              backoff: { base: '100ms', cap: '1s' },
              inflight: this.size.inflight,
              rules: [{ pattern: 'site/#', remote_prefix: REMOTE_PREFIX }],
            },
          ],
        },
        null,
        2,
      ),
    );
  }

  /** Starts outpost and (re)attaches every source. */
  async startOutpost(): Promise<void> {
    this.outpost = await OutpostProcess.start(this.config, { built: this.size.built ?? false });
    await this.connectLocal();
    await this.attachAll();
  }

  /**
   * The persistent local subscriber (MQTT 5, session expiry 1 h, QoS 1 on site/#): connected
   * once; MQTT.js reconnects it after each restart and the session, restored from the store,
   * delivers what was queued for it.
   */
  private async connectLocal(): Promise<void> {
    if (this.localClient !== undefined) return;
    const c = mqtt.connect(this.mqttUrl, { clientId: 'local-observer', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 200, connectTimeout: 3000 });
    c.on('error', () => undefined);
    c.on('message', (topic, payload, packet) => this.local.push({ topic, payload, dup: packet.dup, id: undefined, src: undefined, seq: undefined, props: {} }));
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    await c.subscribeAsync('site/#', { qos: 1 });
    this.localClient = c;
  }

  async attachAll(): Promise<void> {
    for (const s of this.serial) s.start();
    await Promise.all(this.mqtt.map((m) => m.attach(this.mqttUrl)));
    // Sensors in batches, as a radio network would come back.
    for (let i = 0; i < this.sensors.length; i += 100) {
      await Promise.all(this.sensors.slice(i, i + 100).map((s) => s.attach(this.snPort)));
    }
  }

  /** Sensors whose loop stopped (no PUBACK within 5 s) come back from a new port; closed MQTT clients reconnect. */
  async reattachBroken(): Promise<number> {
    const broken = this.sensors.filter((s) => s.broken);
    for (const s of broken) await s.attach(this.snPort).catch(() => undefined);
    const closed = this.mqtt.filter((m) => !m.connected);
    for (const m of closed) await m.attach(this.mqttUrl).catch(() => undefined);
    return broken.length + closed.length;
  }

  /** kill -9 during load, then start again and re-attach everyone. */
  /** kill -9 and start again; `whileDown` runs in between (e.g. to look into the database file). */
  async crashAndRestart(whileDown?: () => void | Promise<void>): Promise<void> {
    await this.outpost!.crash();
    this.crashes++;
    await Promise.all(this.sources.map((s) => s.detach()));
    await whileDown?.();
    await this.startOutpost();
  }

  /** store.dir of the outpost under test. */
  get storeDir(): string {
    return this.size.storeDir ?? join(this.dir, 'data');
  }

  /** The database file of the outpost under test. */
  get databaseFile(): string {
    return join(this.storeDir, 'outpost.db');
  }

  /**
   * Edits the config file and sends SIGHUP; resolves once outpost logged the reload's outcome
   * ("config reloaded" or a rejection), with that log line.
   */
  async reload(edit: (config: Record<string, unknown>) => void): Promise<Record<string, unknown>> {
    const config = JSON.parse(readFileSync(this.config, 'utf8')) as Record<string, unknown>;
    edit(config);
    writeFileSync(this.config, JSON.stringify(config, null, 2));
    const o = this.outpost!;
    const outcome = (): Record<string, unknown>[] => o.output().split('\n').filter((l) => /"msg":"config (reloaded|not reloaded)/.test(l)).map((l) => JSON.parse(l) as Record<string, unknown>);
    const before = outcome().length;
    o.hup();
    const deadline = Date.now() + 15_000;
    while (outcome().length === before) {
      if (Date.now() > deadline) throw new Error('no reload outcome logged within 15 s of SIGHUP');
      await sleep(50);
    }
    return outcome()[before]!;
  }

  /**
   * A zombie uplink: the proxy forwards nothing but keeps the sockets open (stall), or only
   * the bridge's side gets through (half-open: the cloud receives, no ack or PINGRESP comes
   * back). Resolves with the milliseconds until the bridge gave up on the link and dialled again.
   */
  async zombieUplink(kind: 'stall' | 'half-open' = 'stall'): Promise<number> {
    const before = this.proxy.accepted;
    const t0 = Date.now();
    if (kind === 'stall') this.proxy.stall();
    else this.proxy.halfOpenLink();
    const limit = 4 * this.size.keepaliveSec * 1000 + 5000;
    while (this.proxy.accepted === before && Date.now() - t0 < limit) await sleep(20);
    const ms = Date.now() - t0;
    this.proxy.resume();
    this.proxy.drop(); // the stalled new connection too
    return ms;
  }

  /**
   * Stops every source, waits until every acknowledged number is at the cloud and at the
   * local subscriber (or `ms` passed), and checks both.
   */
  async settle(ms: number): Promise<{ cloud: SourceCheck[]; local: SourceCheck[] }> {
    await Promise.all(this.sources.map((s) => s.detach()));
    const deadline = Date.now() + ms;
    const check = () => ({ cloud: checkAll(this.sources, this.observer.messages, REMOTE_PREFIX), local: checkAll(this.sources, this.local, '') });
    let c = check();
    while ([...c.cloud, ...c.local].some((x) => x.lostCount > 0) && Date.now() < deadline) {
      await sleep(250);
      c = check();
    }
    await sleep(500); // late duplicates count too
    return check();
  }

  /** The gateway's /metrics text. */
  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return res.text();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.detach().catch(() => undefined)));
    await this.localClient?.endAsync(true).catch(() => undefined);
    if (this.modbusTimer) clearInterval(this.modbusTimer);
    this.modbus?.stop();
    await this.outpost?.stop(5000).catch(() => undefined);
    await this.observer?.close().catch(() => undefined);
    await this.proxy?.close().catch(() => undefined);
    await this.cloud.dispose().catch(() => undefined);
    await this.lab.cleanup().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
