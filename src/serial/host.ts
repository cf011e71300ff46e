/**
 * The driver host: the Service that turns the `serial:` config into ports and devices.
 *
 *   config.serial.devices ─ group by port ─▶ PortLink (one per port; a shared RS-485 bus is one link)
 *                                             └▶ DeviceRuntime × n (driver instance, device map, topics)
 *
 * Start never fails because of a device: a missing port is retried in the background and the
 * device is reported offline. Stop: devices halt, links close (ending transactions), devices
 * publish their final offline state and counters.
 */
import type { Logger } from 'pino';
import { portKey, type DeviceConfig, type SerialConfig } from '../config/serial-schema.js';
import type { Bus } from '../core/bus.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import type { Service } from '../core/lifecycle.js';
import type { ProgressProbe } from '../core/progress.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
import type { DriverDefinition } from './driver-api.js';
import { DeviceRuntime, lineOf, type DeviceCounters } from './device.js';
import { PortLink } from './link.js';
import { describePort, type PortOpener } from './port.js';

export interface SerialHostDeps {
  bus: Bus;
  log: Logger;
  /** Port access; the gateway passes the serialport adapter, tests in-memory ports. */
  opener: PortOpener;
  /** Drivers by name (the built-in list unless a test adds its own). */
  drivers: ReadonlyMap<string, DriverDefinition>;
  clock?: Clock;
  random?: () => number;
}

export class SerialHost implements Service {
  readonly name = 'serial';
  private readonly links: PortLink[] = [];
  private readonly deviceMap = new Map<string, DeviceRuntime>();
  private statsTimer: TimerHandle | undefined;
  private started = false;
  private lastStatsAt = 0;
  private readonly clock: Clock;

  constructor(
    private readonly config: SerialConfig,
    private readonly deps: SerialHostDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
  }

  /** Counters of one device (tests, bench, metrics). */
  counters(id: string): Readonly<DeviceCounters> | undefined {
    return this.deviceMap.get(id)?.counters;
  }

  /** Progress: the periodic counters (every stats_interval) were due and not published. */
  readonly progress: ProgressProbe = {
    name: 'serial host',
    waitingSince: (now) => {
      if (this.statsTimer === undefined || !this.started) return undefined;
      const due = this.lastStatsAt + this.config.stats_interval;
      return due <= now ? due : undefined;
    },
  };

  /** Every configured device with its state and counters (metrics, status). */
  devices(): { id: string; online: boolean; counters: Readonly<DeviceCounters> }[] {
    return [...this.deviceMap.values()].map((d) => ({ id: d.id, online: d.online, counters: d.counters }));
  }

  isOnline(id: string): boolean {
    return this.deviceMap.get(id)?.online ?? false;
  }

  /** The link a device uses (tests look at pause state and pending readings). */
  linkOf(id: string): PortLink | undefined {
    return this.deviceMap.get(id)?.link;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const log = this.deps.log;
    const limiter = new LogRateLimiter(this.clock);
    const groups = new Map<string, DeviceConfig[]>();
    for (const d of this.config.devices) {
      const key = portKey(d.port);
      groups.set(key, [...(groups.get(key) ?? []), d]);
    }
    for (const group of groups.values()) {
      const first = group[0]!;
      const driver = this.driverOf(first);
      const members: DeviceRuntime[] = [];
      const byId = (id: string | undefined) => members.find((m) => m.id === id) ?? members[0]!;
      const link = new PortLink(
        {
          port: first.port,
          line: lineOf(first),
          framing: driver.framing(first.options as never),
          reopenBaseMs: this.config.reopen.base,
          reopenCapMs: this.config.reopen.cap,
          maxPending: this.config.max_pending,
        },
        { opener: this.deps.opener, clock: this.clock, log: log.child({ port: describePort(first.port) }), limiter, random: this.deps.random },
        {
          opened: () => members.forEach((m) => m.opened()),
          closed: () => members.forEach((m) => m.closed()),
          frame: (frame, owner) => byId(owner).frame(frame),
          discard: (n, reason, owner) => byId(owner).discard(n, reason),
          timeout: (owner) => byId(owner).fail('timeout', 'no answer in time'),
        },
      );
      for (const d of group) {
        const rt = new DeviceRuntime(d, this.driverOf(d), link, { bus: this.deps.bus, clock: this.clock, log, limiter, statePrefix: this.config.state_prefix });
        members.push(rt);
        this.deviceMap.set(d.id, rt);
      }
      this.links.push(link);
    }
    for (const d of this.deviceMap.values()) d.start();
    for (const l of this.links) l.start();
    if (this.deviceMap.size > 0) {
      this.lastStatsAt = this.clock.now();
      this.statsTimer = this.clock.setInterval(() => {
        this.lastStatsAt = this.clock.now();
        this.deviceMap.forEach((d) => d.publishStats());
      }, this.config.stats_interval);
      log.info({ devices: this.deviceMap.size, ports: this.links.length }, 'serial devices configured');
    }
  }

  private driverOf(d: DeviceConfig): DriverDefinition {
    const def = this.deps.drivers.get(d.driver);
    // The config schema only admits known drivers; this guards a registry that differs from it.
    if (def === undefined) throw new OutpostError('CONFIG_INVALID', `serial device "${d.id}": unknown driver "${d.driver}"`);
    return def;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.statsTimer?.cancel();
    this.statsTimer = undefined;
    for (const d of this.deviceMap.values()) d.halt();
    await Promise.all(this.links.map((l) => l.stop()));
    await Promise.all([...this.deviceMap.values()].map((d) => d.stop()));
    this.links.length = 0;
    this.deviceMap.clear();
  }
}
