/**
 * sd_notify for `Type=notify` units: READY=1 once every listener is up, STOPPING=1 when
 * shutdown begins, WATCHDOG=1 every WATCHDOG_USEC/2 while the event loop makes progress.
 * Without NOTIFY_SOCKET (not run by systemd) every call is a no-op.
 *
 *   run ─▶ startWatchdog() ─▶ gateway.start ─▶ ready() ─▶ … signal ─▶ stopping() ─▶ gateway.stop ─▶ close()
 *   SIGHUP ─▶ reloading() ─▶ reload ─▶ ready()
 *
 * NOTIFY_SOCKET is an AF_UNIX datagram socket and Node has none (dgram is UDP only; the npm
 * packages `unix-dgram` and `sd-notify` are native builds, a burden on a Pi). So the
 * transport runs systemd's own `systemd-notify` command, present wherever systemd is.
 * The message then comes from a child process, hence `NotifyAccess=all` in the unit; and
 * systemd-notify waits on a BARRIER=1 until PID 1 has processed the message, so the child
 * cannot exit before systemd attributes the message to our cgroup (systemd-notify(1)).
 *
 * Watchdog: a short ticker measures event-loop lag. A ping is sent only when the largest
 * lag since the last ping is below the ping interval: a blocked loop runs no timer at all
 * (no pings), and a loop that just came back from a long stall withholds one ping, so
 * systemd sees the stall it would otherwise never notice.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { StuckComponent } from '../core/progress.js';

/** Sends one notification (newline-joined assignments) to the socket; rejects on failure. */
export type NotifySend = (socket: string, assignments: readonly string[]) => Promise<void>;

export interface SystemdNotifierOptions {
  /** Usually process.env: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID. */
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  pid?: number;
  clock?: Clock;
  /**
   * A clock that never steps, for the event-loop lag (default performance.now(), or `clock`
   * when one is given): a step of the wall clock (NTP on a Pi) is not a stall.
   */
  monotonic?: () => number;
  /** Default: the `systemd-notify` command (see commandSender). */
  send?: NotifySend;
}

/**
 * The `systemd-notify` command as a sender. `block: false` (`--no-block`) skips the barrier;
 * only for receivers that are not systemd (a test's socat keeps the barrier fd open).
 */
export function commandSender(opts: { command?: string; block?: boolean; timeoutMs?: number } = {}): NotifySend {
  return (socket, assignments) =>
    new Promise((resolve, reject) => {
      const args = [...(opts.block === false ? ['--no-block'] : []), ...assignments];
      const child = spawn(opts.command ?? 'systemd-notify', args, {
        env: { ...process.env, NOTIFY_SOCKET: socket },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: opts.timeoutMs ?? 10_000,
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 500)));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`systemd-notify ${assignments.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
      });
    });
}

export class SystemdNotifier {
  readonly socket: string | undefined;
  /** Interval between watchdog pings (WATCHDOG_USEC/2), or undefined without a watchdog. */
  readonly pingIntervalMs: number | undefined;
  private readonly clock: Clock;
  private readonly mono: () => number;
  private readonly send: NotifySend;
  private readonly log: Logger;
  private readonly pid: number;
  private ticker: TimerHandle | undefined;
  private pinger: TimerHandle | undefined;
  private tickMs = 0;
  private expectedTick = 0;
  private maxLagMs = 0;
  private lastLagMs = 0;
  private pingInFlight = false;
  private stuck: (() => readonly StuckComponent[]) | undefined;
  /** The stuck components last logged, so the warning is written once per change. */
  private stuckLogged = '';
  private disabled = false;
  /** Watchdog pings sent and withheld (for tests and metrics). */
  readonly counts = { pings: 0, withheld: 0, failures: 0 };

  constructor(opts: SystemdNotifierOptions) {
    this.log = opts.log.child({ component: 'systemd' });
    this.clock = opts.clock ?? systemClock;
    const clock = opts.clock;
    this.mono = opts.monotonic ?? (clock === undefined ? () => performance.now() : () => clock.now());
    this.send = opts.send ?? commandSender();
    this.pid = opts.pid ?? process.pid;
    const socket = opts.env.NOTIFY_SOCKET;
    this.socket = socket === undefined || socket === '' ? undefined : socket;
    const usec = Number(opts.env.WATCHDOG_USEC);
    // WATCHDOG_PID names the process the watchdog is meant for; a child that inherited
    // the environment must not ping on its parent's behalf (sd_watchdog_enabled(3)).
    const pidOk = opts.env.WATCHDOG_PID === undefined || Number(opts.env.WATCHDOG_PID) === this.pid;
    this.pingIntervalMs = this.socket !== undefined && pidOk && Number.isFinite(usec) && usec > 0
      ? Math.max(1, Math.floor(usec / 2000)) : undefined;
  }

  get enabled(): boolean {
    return this.socket !== undefined && !this.disabled;
  }

  /** Event-loop lag seen by the last watchdog tick, in ms (0 without a watchdog). */
  get eventLoopLagMs(): number {
    return this.lastLagMs;
  }

  async ready(status?: string): Promise<void> {
    await this.notify(['READY=1', `MAINPID=${this.pid}`, ...(status ? [`STATUS=${status}`] : [])]);
  }

  /**
   * A reload began; ready() ends it. MONOTONIC_USEC (CLOCK_MONOTONIC, which hrtime reads on
   * Linux) is what Type=notify-reload units must send with it, and harmless for Type=notify.
   */
  async reloading(): Promise<void> {
    await this.notify(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`]);
  }

  async stopping(): Promise<void> {
    await this.notify(['STOPPING=1']);
  }

  /**
   * Starts the watchdog pings when systemd asked for them (WATCHDOG_USEC); idempotent.
   * `stuck` names the components that stopped making progress: while any does, pings are
   * withheld, so systemd restarts a gateway whose loop turns but whose bridge does not.
   */
  startWatchdog(stuck?: () => readonly StuckComponent[]): void {
    const interval = this.pingIntervalMs;
    if (interval === undefined || this.pinger !== undefined || !this.enabled) return;
    this.stuck = stuck;
    this.tickMs = Math.max(1, Math.min(1000, Math.floor(interval / 4)));
    this.expectedTick = this.mono() + this.tickMs;
    this.ticker = this.clock.setInterval(() => this.tick(), this.tickMs);
    this.pinger = this.clock.setInterval(() => this.ping(interval), interval);
    this.log.info({ intervalMs: interval }, 'watchdog pings started');
    this.ping(interval); // the first one at once: start-up may take a while
  }

  /** Stops the watchdog timers; idempotent. */
  close(): void {
    this.ticker?.cancel();
    this.pinger?.cancel();
    this.ticker = undefined;
    this.pinger = undefined;
  }

  private tick(): void {
    const now = this.mono();
    this.lastLagMs = Math.max(0, now - this.expectedTick);
    this.maxLagMs = Math.max(this.maxLagMs, this.lastLagMs);
    this.expectedTick = now + this.tickMs;
  }

  private ping(interval: number): void {
    // A stall ends with the ping timer and the ticker both due; measure it first.
    this.tick();
    const lag = this.maxLagMs;
    this.maxLagMs = 0;
    if (lag >= interval) {
      this.counts.withheld++;
      this.log.warn({ lagMs: lag, intervalMs: interval }, 'event loop stalled, watchdog ping withheld');
      return;
    }
    const stuck = this.stuck?.() ?? [];
    const names = stuck.map((s) => s.name).join(', ');
    if (names !== this.stuckLogged) {
      this.stuckLogged = names;
      if (names !== '') this.log.error({ stuck }, `no progress in ${names}; watchdog pings withheld so systemd restarts the gateway`);
      else this.log.info('every component makes progress again; watchdog pings resumed');
    }
    if (stuck.length > 0) {
      this.counts.withheld++;
      return;
    }
    if (this.pingInFlight) return; // the previous ping is still waiting for systemd
    this.pingInFlight = true;
    void this.notify(['WATCHDOG=1']).then(
      (sent) => {
        if (sent) this.counts.pings++;
      },
    ).finally(() => (this.pingInFlight = false));
  }

  /** Resolves true when sent; failures are logged (warn), never thrown: systemd is advisory here. */
  private async notify(assignments: readonly string[]): Promise<boolean> {
    if (!this.enabled) return false;
    try {
      await this.send(this.socket!, assignments);
      this.log.debug({ state: assignments }, 'notified systemd');
      return true;
    } catch (err) {
      this.counts.failures++;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.disabled = true;
        this.close();
        this.log.warn('NOTIFY_SOCKET is set but the systemd-notify command is missing; install systemd or unset NOTIFY_SOCKET');
      } else {
        this.log.warn({ err: (err as Error).message, state: assignments }, 'systemd notification failed');
      }
      return false;
    }
  }
}
