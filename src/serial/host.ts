/**
 * The driver host: the Service that turns the `serial:` config into ports and devices.
 *
 *   config.serial.devices ─ group by port ─▶ PortLink (one per port; a shared RS-485 bus is one link)
 *                                             └▶ DeviceRuntime × n (driver instance, device map, topics)
 *
 * Start never fails because of a device: a missing port is retried in the background and the
 * device is reported offline. Stop: devices halt, links close (ending transactions), devices
 * publish their final offline state and counters. A live reload (reload()) restarts only the
 * ports whose devices changed.
 */
import type { Logger } from 'pino';
import { portKey, type DeviceConfig, type SerialConfig } from '../config/serial-schema.js';
import type { Authorizer } from '../core/authorizer.js';
import type { Bus } from '../core/bus.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import { sameValue } from '../core/same-value.js';
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
  /** ACL checks for readings (`serial <device>` sections); default: everything allowed. */
  authorizer?: Authorizer;
}

interface PortGroup {
  /** The device configs on this port, in config order (a shared RS-485 bus has several). */
  configs: DeviceConfig[];
  link: PortLink;
  members: DeviceRuntime[];
}

function groupByPort(devices: readonly DeviceConfig[]): Map<string, DeviceConfig[]> {
  const groups = new Map<string, DeviceConfig[]>();
  for (const d of devices) {
    const key = portKey(d.port);
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  return groups;
}

/** What the link and the driver instances are made from: the same for two groups, only device maps differ. */
function sameLink(a: readonly DeviceConfig[], b: readonly DeviceConfig[]): boolean {
  const linkOf = (d: DeviceConfig) => [d.id, d.port, d.baud, d.data_bits, d.parity, d.stop_bits, d.driver, d.options];
  return a.length === b.length && a.every((d, i) => sameValue(linkOf(d), linkOf(b[i]!)));
}

export class SerialHost implements Service {
  readonly name = 'serial';
  private readonly groups = new Map<string, PortGroup>();
  private readonly runtimes = new Map<string, DeviceRuntime>();
  private statsTimer: TimerHandle | undefined;
  private started = false;
  private lastStatsAt = 0;
  private readonly clock: Clock;
  private readonly limiter: LogRateLimiter;

  constructor(
    private config: SerialConfig,
    private readonly deps: SerialHostDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.limiter = new LogRateLimiter(this.clock);
  }

  /** Counters of one device (tests, bench, metrics). */
  counters(id: string): Readonly<DeviceCounters> | undefined {
    return this.runtimes.get(id)?.counters;
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

  /** The wall clock stepped (core/clock-steps.ts): the counters are not taken for overdue (progress probe). */
  clockStepped(deltaMs: number): void {
    this.lastStatsAt += deltaMs;
  }

  /** Every configured device with its state and counters (metrics, status). */
  devices(): { id: string; online: boolean; counters: Readonly<DeviceCounters> }[] {
    return [...this.runtimes.values()].map((d) => ({ id: d.id, online: d.online, counters: d.counters }));
  }

  isOnline(id: string): boolean {
    return this.runtimes.get(id)?.online ?? false;
  }

  /** The link a device uses (tests look at pause state and pending readings). */
  linkOf(id: string): PortLink | undefined {
    return this.runtimes.get(id)?.link;
  }

  /** Ids of the devices running now. */
  get deviceIds(): string[] {
    return [...this.runtimes.keys()];
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const [key, group] of groupByPort(this.config.devices)) this.startGroup(key, group);
    this.armStats();
    if (this.runtimes.size > 0) this.deps.log.info({ devices: this.runtimes.size, ports: this.groups.size }, 'serial devices configured');
  }

  /**
   * Applies a new `serial:` section: ports whose devices are unchanged keep running; a port
   * whose devices changed only their device maps keeps its link (remapGroup); a port with an
   * added, removed or otherwise changed device restarts (its link and every device on it); a
   * change of the host settings (reopen, max_pending, state_prefix) restarts them all, while
   * stats_interval only re-arms the stats timer. A restarted device carries on its counters
   * (they only rise); a removed one that comes back later starts from 0. Resolves with one
   * phrase per device added, removed, restarted or changed.
   */
  async reload(next: SerialConfig): Promise<string[]> {
    // stats_interval only re-arms the stats timer (below): no port needs to close for it.
    const hostOf = (c: SerialConfig) => ({ ...c, devices: [], include: [], stats_interval: 0 });
    const restartAll = !sameValue(hostOf(this.config), hostOf(next));
    const prefixBefore = this.config.state_prefix;
    this.config = next;
    if (!this.started) return [];
    const wanted = groupByPort(next.devices);
    const stopped = new Map<string, DeviceRuntime>();
    const started = new Set<string>();
    const remapped: string[] = [];
    for (const [key, g] of [...this.groups]) {
      const want = wanted.get(key);
      if (!restartAll && want !== undefined && sameValue(want, g.configs)) continue;
      if (!restartAll && want !== undefined && sameLink(want, g.configs)) {
        remapped.push(...(await this.remapGroup(g, want)));
        continue;
      }
      for (const m of g.members) stopped.set(m.id, m);
      await this.stopGroup(key, g);
    }
    for (const [key, group] of wanted) {
      if (this.groups.has(key)) continue;
      this.startGroup(key, group, stopped);
      for (const d of group) started.add(d.id);
    }
    this.armStats();
    // Retained state of a device that is gone, or now lives under another state prefix.
    for (const [id, m] of stopped) if (!started.has(id) || prefixBefore !== next.state_prefix) m.forget();
    const changes = remapped.map((id) => `serial device ${id} changed (its port stays open)`);
    for (const id of started) changes.push(stopped.has(id) ? `serial device ${id} restarted` : `serial device ${id} added`);
    for (const id of stopped.keys()) if (!started.has(id)) changes.push(`serial device ${id} removed`);
    return changes;
  }

  /** `replaced`: runtimes a reload stopped, by id; a device that replaces one carries on its counters. */
  private startGroup(key: string, group: DeviceConfig[], replaced?: ReadonlyMap<string, DeviceRuntime>): void {
    const log = this.deps.log;
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
      { opener: this.deps.opener, clock: this.clock, log: log.child({ port: describePort(first.port) }), limiter: this.limiter, random: this.deps.random },
      {
        opened: () => members.forEach((m) => m.opened()),
        closed: () => members.forEach((m) => m.closed()),
        frame: (frame, owner) => byId(owner).frame(frame),
        discard: (n, reason, owner) => byId(owner).discard(n, reason),
        timeout: (owner) => byId(owner).fail('timeout', 'no answer in time'),
      },
    );
    for (const d of group) {
      const rt = new DeviceRuntime(d, this.driverOf(d), link, { bus: this.deps.bus, clock: this.clock, log, limiter: this.limiter, statePrefix: this.config.state_prefix, authorizer: this.deps.authorizer });
      const previous = replaced?.get(d.id);
      if (previous !== undefined) rt.continueCountsOf(previous);
      members.push(rt);
      this.runtimes.set(d.id, rt);
    }
    this.groups.set(key, { configs: group, link, members });
    for (const m of members) m.start();
    link.start();
  }

  /**
   * Only device maps changed (topic, metrics, payload, qos, retain, command topic): each changed
   * device gets a new runtime on the same open link, so the bytes on their way (a half-read
   * line, the stream's read-ahead) are not dropped with a closed port; at 1 MB/s a reload lost
   * 600 lines that way. Resolves with the ids of the devices replaced.
   */
  private async remapGroup(g: PortGroup, want: DeviceConfig[]): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < want.length; i++) {
      const old = g.members[i]!;
      if (sameValue(want[i], g.configs[i])) continue;
      await old.retire();
      const rt = new DeviceRuntime(want[i]!, this.driverOf(want[i]!), g.link, { bus: this.deps.bus, clock: this.clock, log: this.deps.log, limiter: this.limiter, statePrefix: this.config.state_prefix, authorizer: this.deps.authorizer });
      rt.continueCountsOf(old);
      // The link's event handlers read the members array: from here on frames go to rt.
      g.members[i] = rt;
      this.runtimes.set(rt.id, rt);
      rt.start();
      if (g.link.isOpen) rt.opened();
      ids.push(rt.id);
    }
    g.configs = want;
    return ids;
  }

  /** Devices halt, the link closes (ending a transaction), devices say offline. */
  private async stopGroup(key: string, g: PortGroup): Promise<void> {
    this.groups.delete(key);
    for (const m of g.members) m.halt();
    await g.link.stop();
    await Promise.all(g.members.map((m) => m.stop()));
    for (const m of g.members) if (this.runtimes.get(m.id) === m) this.runtimes.delete(m.id);
  }

  private armStats(): void {
    this.statsTimer?.cancel();
    this.statsTimer = undefined;
    if (this.runtimes.size > 0) {
      this.lastStatsAt = this.clock.now();
      this.statsTimer = this.clock.setInterval(() => {
        this.lastStatsAt = this.clock.now();
        this.runtimes.forEach((d) => d.publishStats());
      }, this.config.stats_interval);
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
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const g of groups) for (const m of g.members) m.halt();
    await Promise.all(groups.map((g) => g.link.stop()));
    await Promise.all(groups.flatMap((g) => g.members.map((m) => m.stop())));
    this.runtimes.clear();
  }
}
