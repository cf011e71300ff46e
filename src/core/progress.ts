/**
 * Is every component still turning? Each long-lived component answers one question through
 * a ProgressProbe: since when has work been waiting that it should already have done? An idle
 * component, or one that waits for a good reason (reconnect backoff on an uplink outage, a
 * full inflight window, a socket that must drain), answers "nothing" and is healthy however
 * long that lasts. A component whose loop stopped turning keeps answering the same old time.
 *
 *   broker sweep, outbox committer, bridge forwarders, serial host, MQTT-SN gateway
 *        └─ waitingSince(now) ─▶ ProgressMonitor.stuck() ─▶ watchdog pings withheld, /healthz 503
 *
 * The monitor also remembers when it first saw a component waiting, so a component that was
 * idle for an hour and then got work is given the full grace period from that moment.
 */
import type { Clock } from './clock.js';

export interface ProgressProbe {
  /** Shown in /healthz and the logs, e.g. `bridge cloud forwarder`. */
  readonly name: string;
  /**
   * Clock ms since which work has been waiting undone (e.g. the last turn of a loop that has
   * work, or the time a timer was due); undefined when idle, caught up or waiting legitimately.
   */
  waitingSince(now: number): number | undefined;
}

export interface StuckComponent {
  name: string;
  /** How long it has made no progress with work waiting, in ms. */
  forMs: number;
}

/** A progress stamp a component updates at every turn of its loop. */
export class ProgressStamp {
  at: number;

  constructor(private readonly clock: Pick<Clock, 'now'>) {
    this.at = clock.now();
  }

  turn(): void {
    this.at = this.clock.now();
  }
}

export class ProgressMonitor {
  private readonly sources: (() => readonly ProgressProbe[])[] = [];
  /** Probe name → when it was first seen waiting, on the monotonic clock. */
  private readonly firstSeen = new Map<string, number>();

  constructor(
    /** Work waiting this long without progress makes a component stuck. */
    readonly stuckAfterMs: number,
    private readonly clock: Pick<Clock, 'now'>,
    /**
     * A clock that never steps (performance.now() in production; default `clock`): how long
     * this monitor saw a probe waiting, so that a step of the wall clock between two checks
     * (NTP on a Pi without a real-time clock) does not make a waiting component stuck.
     */
    private readonly monotonic: () => number = () => clock.now(),
  ) {}

  /** Adds a source of probes, asked at every check (components come and go with start and stop). */
  watch(source: () => readonly ProgressProbe[]): void {
    this.sources.push(source);
  }

  /** The components that are stuck now (empty when all turn). */
  stuck(): StuckComponent[] {
    const now = this.clock.now();
    const mono = this.monotonic();
    const out: StuckComponent[] = [];
    const seenNow = new Set<string>();
    for (const p of this.sources.flatMap((s) => s())) {
      let since: number | undefined;
      try {
        since = p.waitingSince(now);
      } catch {
        since = -Infinity; // a probe that throws cannot vouch for its component
      }
      if (since === undefined) continue;
      seenNow.add(p.name);
      let seen = this.firstSeen.get(p.name);
      if (seen === undefined) this.firstSeen.set(p.name, (seen = mono));
      // The shorter of the probe's own wait (its wall-clock stamp) and this monitor's (monotonic);
      // a stamp in the future was taken before a step of the wall clock back: the monitor's alone.
      const wallFor = now - since;
      const forMs = wallFor < 0 ? mono - seen : Math.min(wallFor, mono - seen);
      if (forMs >= this.stuckAfterMs) out.push({ name: p.name, forMs });
    }
    for (const name of this.firstSeen.keys()) if (!seenNow.has(name)) this.firstSeen.delete(name);
    return out;
  }
}
