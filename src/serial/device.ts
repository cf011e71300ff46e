/**
 * One configured device: its driver instance, device map, counters, state topic, poll loop
 * and command topic. Frames come from its PortLink; readings go to the bus.
 *
 *   frame ─▶ driver.parse ─▶ DeviceMapper ─▶ bus.publish ─▶ link.track(promise)   (pauses the port when full)
 *   poll timer ─▶ driver.poll.run() (ctx.transact through the link) ─▶ same path; next poll after they settle
 *   command topic ─▶ driver.command(payload) ─▶ <command_topic>/result (or the MQTT 5 response topic)
 */
import type { Logger } from 'pino';
import type { DeviceConfig } from '../config/serial-schema.js';
import type { Authorizer } from '../core/authorizer.js';
import type { Bus, BusSubscription } from '../core/bus.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { makeOrigin, type Message } from '../core/message.js';
import type { LogRateLimiter } from '../observability/rate-limit.js';
import type { CommandResult, DriverContext, DriverDefinition, DriverInstance, FailureKind, LineSettings, Reading } from './driver-api.js';
import type { DiscardReason } from './framer.js';
import type { PortLink } from './link.js';
import { DeviceMapper, renderTemplate } from './mapping.js';

export interface DeviceCounters {
  frames: number;
  readings: number;
  published: number;
  held_back: number;
  discarded_bytes: number;
  decode_failures: number;
  checksum_failures: number;
  timeouts: number;
  reopens: number;
  publish_failures: number;
  /** Readings the ACL file (a `serial <device>` section) does not let this device publish. */
  denied: number;
  commands: number;
  command_failures: number;
}

export interface DeviceDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  limiter: LogRateLimiter;
  statePrefix: string;
  /** ACL checks for readings; default: everything allowed. */
  authorizer?: Authorizer;
}

const MAX_QUEUED_COMMANDS = 16;

export function lineOf(d: DeviceConfig): LineSettings {
  return { baud: d.baud, dataBits: d.data_bits, parity: d.parity, stopBits: d.stop_bits };
}

export class DeviceRuntime {
  readonly id: string;
  readonly counters: DeviceCounters = {
    frames: 0, readings: 0, published: 0, held_back: 0, discarded_bytes: 0, decode_failures: 0,
    checksum_failures: 0, timeouts: 0, reopens: 0, publish_failures: 0, denied: 0, commands: 0, command_failures: 0,
  };
  online = false;
  /**
   * What the runtimes this one replaced on reloads counted of the two counters that are read
   * from elsewhere (the link's reopens, the mapper's held-back readings), which start at 0 again.
   */
  private readonly carried = { reopens: 0, held_back: 0 };
  private readonly instance: DriverInstance;
  private readonly mapper: DeviceMapper;
  private readonly log: Logger;
  private readonly origin: Message['origin'];
  private readonly commandTopic: string | undefined;
  private subscription: BusSubscription | undefined;
  private pollTimer: TimerHandle | undefined;
  private polling: Promise<void> | undefined;
  private running = false;
  private halt_!: () => void;
  private readonly halted = new Promise<void>((resolve) => (this.halt_ = resolve));
  private stopped = false;
  private commands: Message[] = [];
  private commandLoop: Promise<void> | undefined;

  constructor(
    readonly config: DeviceConfig,
    driver: DriverDefinition,
    readonly link: PortLink,
    private readonly deps: DeviceDeps,
  ) {
    this.id = config.id;
    this.origin = makeOrigin('serial', config.id);
    this.log = deps.log.child({ device: config.id });
    this.mapper = new DeviceMapper({
      device: config.id,
      driver: config.driver,
      topic: config.topic,
      payload: config.payload,
      qos: config.qos,
      retain: config.retain,
      onlyMapped: config.only_mapped,
      metrics: config.metrics,
    }, (metric, detail) => this.fail('decode', `metric ${metric.length > 80 ? `${metric.slice(0, 80)}…` : metric}: ${detail}`));
    this.commandTopic = config.command_topic === undefined ? undefined : renderTemplate(config.command_topic, { device: config.id, driver: config.driver });
    const ctx: DriverContext = {
      device: config.id,
      line: lineOf(config),
      now: () => deps.clock.now(),
      write: (data) => link.write(data),
      // An answer is a frame from the device too: stats count it like an unsolicited one.
      transact: (request, opts) =>
        link.transact(config.id, request, opts).then((f) => {
          if (f !== undefined) this.counters.frames++;
          return f;
        }),
      fail: (kind, detail) => this.fail(kind, detail),
    };
    // The options were parsed by the driver's schema when the config was loaded.
    this.instance = driver.create(config.options as never, ctx);
  }

  private stateTopic(leaf: 'state' | 'stats'): string {
    return `${this.deps.statePrefix}/${this.id}/${leaf}`;
  }

  private publishSystem(topic: string, payload: string, retain: boolean): void {
    const p = this.deps.bus.publish({ topic, payload: Buffer.from(payload), qos: 1, retain, origin: this.origin });
    p?.catch((err: unknown) => this.log.warn({ err, topic }, 'state not accepted by the bus'));
  }

  /**
   * On a port that is already open (a reload that kept it, see SerialHost.reload), the retained
   * state stays as the runtime it replaces left it, and opened() follows at once.
   */
  start(): void {
    this.running = true;
    if (!this.link.isOpen) this.publishSystem(this.stateTopic('state'), 'offline', true);
    if (this.commandTopic !== undefined) {
      this.subscription = this.deps.bus.subscribe(this.commandTopic, this.origin, { qos: 1 }, (msg) => this.enqueueCommand(msg));
    }
  }

  /**
   * Carries on the counts of the runtime this one replaces on a reload (same device id, changed
   * config), so every counter of a device only rises (a drop reads as a process restart to
   * Prometheus). Called before start(), once the previous runtime has stopped.
   */
  continueCountsOf(previous: DeviceRuntime): void {
    previous.syncDerived();
    for (const k of Object.keys(this.counters) as Array<keyof DeviceCounters>) this.counters[k] += previous.counters[k];
    // On the link it replaced, that link's reopens are counted once, not carried and read again.
    this.carried.reopens = previous.counters.reopens - (previous.link === this.link ? this.link.reopens : 0);
    this.carried.held_back = previous.counters.held_back;
    this.syncDerived();
  }

  /** The counters read from the link and the mapper, on top of what earlier runtimes counted. */
  private syncDerived(): void {
    this.counters.reopens = this.carried.reopens + this.link.reopens;
    this.counters.held_back = this.carried.held_back + this.mapper.skipped;
  }

  // ---- link events ----------------------------------------------------------------

  opened(): void {
    this.syncDerived();
    if (this.instance.poll) this.schedulePoll(0);
    else this.setOnline(true);
  }

  closed(): void {
    this.pollTimer?.cancel();
    this.setOnline(false);
  }

  frame(frame: Buffer): void {
    this.counters.frames++;
    if (this.instance.parse === undefined) {
      this.fail('decode', 'unsolicited frame');
      return;
    }
    const r = this.instance.parse(frame);
    if (!r.ok) {
      this.fail(r.error, r.detail);
      return;
    }
    void this.publishReadings(r.readings, true);
  }

  discard(bytes: number, reason: DiscardReason): void {
    this.counters.discarded_bytes += bytes;
    if (reason === 'reset') return; // the port closed: the loss is already logged
    // A framer's failed check (CRC) is a checksum failure, one per corrupted frame (the
    // framer reports the bytes it slides through inside that frame as garbage, header.ts).
    if (reason === 'checksum') this.counters.checksum_failures++;
    this.logLimited(`discard:${reason}`, 'warn', { bytes, reason }, 'bytes discarded');
  }

  fail(kind: FailureKind, detail: string): void {
    if (kind === 'checksum') this.counters.checksum_failures++;
    else if (kind === 'timeout') this.counters.timeouts++;
    else this.counters.decode_failures++;
    this.logLimited(`fail:${kind}`, 'warn', { kind, detail }, 'bad frame from device');
  }

  private logLimited(key: string, level: 'warn' | 'info', fields: object, msg: string): void {
    const suppressed = this.deps.limiter.take(`${this.id}:${key}`);
    if (suppressed < 0) return;
    this.log[level]({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }

  private setOnline(online: boolean): void {
    if (this.online === online) return;
    this.online = online;
    this.publishSystem(this.stateTopic('state'), online ? 'online' : 'offline', true);
    this.publishStats();
  }

  publishStats(): void {
    this.syncDerived();
    this.publishSystem(this.stateTopic('stats'), JSON.stringify({ online: this.online, ...this.counters }), true);
  }

  /**
   * Hands readings to the bus; the returned promise settles when durable sinks committed them.
   * Unsolicited readings are tracked by the link (which pauses the port when too many wait);
   * polled ones are not, since a paused bus could not read answers: the poll loop waits instead.
   */
  private publishReadings(readings: readonly Reading[], trackOnLink: boolean): Promise<unknown> {
    this.counters.readings += readings.length;
    const messages = this.mapper.map(readings, this.deps.clock.now());
    let waits: Promise<unknown>[] | undefined;
    const grants = this.deps.authorizer?.grantsFor(this.origin);
    for (const msg of messages) {
      if (grants !== undefined && !grants.canWrite(msg.topic)) {
        // Dropped, counted and logged rate-limited; the device's own state topics are not readings and pass.
        this.counters.denied++;
        this.logLimited('denied', 'warn', { topic: msg.topic }, 'reading denied by the ACL');
        continue;
      }
      this.counters.published++;
      const p = this.deps.bus.publish(msg);
      if (p === undefined) continue;
      const settled = p.catch((err: unknown) => {
        this.counters.publish_failures++;
        this.logLimited('publish', 'warn', { err, topic: msg.topic }, 'reading not accepted by the bus');
      });
      if (trackOnLink) this.link.track(settled);
      (waits ??= []).push(settled);
    }
    return waits === undefined ? Promise.resolve() : Promise.all(waits);
  }

  // ---- polling ----------------------------------------------------------------------

  private schedulePoll(delay: number): void {
    this.pollTimer?.cancel();
    if (!this.running || !this.link.isOpen) return;
    this.pollTimer = this.deps.clock.setTimeout(() => {
      this.polling = this.pollOnce().finally(() => (this.polling = undefined));
    }, delay);
  }

  private async pollOnce(): Promise<void> {
    const poll = this.instance.poll!;
    let readings: readonly Reading[] = [];
    try {
      const r = await poll.run();
      readings = r.readings;
      if (this.link.isOpen) this.setOnline(r.reachable);
    } catch (err) {
      this.fail('decode', `poll failed: ${(err as Error).message}`);
    }
    // The next poll waits for this one's readings to be committed: a slow disk slows polling.
    // Stopping does not wait for a commit that may never come.
    await Promise.race([this.publishReadings(readings, false), this.halted]);
    this.schedulePoll(poll.intervalMs);
  }

  // ---- commands ---------------------------------------------------------------------

  private enqueueCommand(msg: Message): void {
    if (this.commands.length >= MAX_QUEUED_COMMANDS) {
      this.counters.command_failures++;
      this.reply(msg, { ok: false, detail: 'too many commands waiting; try again later' });
      return;
    }
    this.commands.push(msg);
    this.commandLoop ??= this.runCommands().finally(() => (this.commandLoop = undefined));
  }

  private async runCommands(): Promise<void> {
    for (let msg = this.commands.shift(); msg !== undefined; msg = this.commands.shift()) {
      this.counters.commands++;
      let result: CommandResult;
      if (this.instance.command === undefined) result = { ok: false, detail: `the ${this.config.driver} driver takes no commands` };
      else if (!this.link.isOpen) result = { ok: false, detail: 'port is not open' };
      else {
        try {
          result = await this.instance.command(msg.payload);
        } catch (err) {
          result = { ok: false, detail: (err as Error).message };
        }
      }
      if (!result.ok) this.counters.command_failures++;
      this.reply(msg, result);
    }
  }

  /**
   * The result goes to the MQTT 5 response topic when the command has one, else
   * <command_topic>/result. The device answers as any responder does, under its own grants
   * (its `serial` ACL section): a response topic it may not write, or one under `$` (the
   * gateway's $SYS state, which no client may publish), would let whoever may command it
   * publish there; the result then goes to <command_topic>/result, and the refusal is logged.
   */
  private reply(cmd: Message, result: CommandResult): void {
    const fallback = `${this.commandTopic}/result`;
    let topic = cmd.properties?.responseTopic ?? fallback;
    if (topic !== fallback && (topic.startsWith('$') || this.deps.authorizer?.grantsFor(this.origin).canWrite(topic) === false)) {
      this.logLimited('response-topic', 'warn', { responseTopic: topic, topic: fallback }, 'response topic not allowed for this device; result sent to the command result topic');
      topic = fallback;
    }
    const body = { ok: result.ok, ...(result.detail !== undefined ? { detail: result.detail } : {}), ...(result.value !== undefined ? { value: result.value } : {}) };
    const corr = cmd.properties?.correlationData;
    const p = this.deps.bus.publish({
      topic,
      payload: Buffer.from(JSON.stringify(body)),
      qos: 1,
      retain: false,
      origin: this.origin,
      ...(corr !== undefined ? { properties: { correlationData: corr } } : {}),
    });
    p?.catch(() => undefined);
  }

  /** First half of stop: no new polls or commands (the link then closes, ending any transaction). */
  halt(): void {
    this.running = false;
    this.halt_();
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.pollTimer?.cancel();
    this.commands = [];
  }

  /**
   * A device removed from the config (or moved under another state prefix): its retained
   * state and stats are cleared, so a dashboard connecting later does not list a device
   * that is gone. Called after stop(), whose retained `offline` live subscribers have seen.
   */
  forget(): void {
    this.publishSystem(this.stateTopic('state'), '', true);
    this.publishSystem(this.stateTopic('stats'), '', true);
  }

  /**
   * Makes way for a runtime with a new device map on the same open port: no new polls or
   * commands, and the ones in flight finish (they use the port, which stays open). Says nothing:
   * the device stays online under its successor.
   */
  async retire(): Promise<void> {
    this.stopped = true;
    this.halt();
    await this.polling;
    await this.commandLoop;
  }

  /** Second half: waits for the poll or command in flight, then says offline (retained). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.halt();
    await this.polling;
    await this.commandLoop;
    this.online = false;
    this.publishSystem(this.stateTopic('state'), 'offline', true);
    this.publishStats();
  }
}
