/**
 * Steps of the wall clock, seen by comparing its advance with a monotonic clock.
 *
 * A Raspberry Pi has no real-time clock: it boots with an old time (fake-hwclock, or
 * 1970) and NTP steps the clock forward, often while outpost already runs. Ages and
 * expiry deadlines are stored as wall-clock ms (created_at, expires_at, offline_at…),
 * so an unseen step of +3 days would age a fresh backlog past max_age at once, and a
 * step backwards would let everything live too long.
 *
 *   wall advance − monotonic advance > tolerance  ⇒  a step of Δ ms
 *   → every listener moves the stamps taken before it by Δ (ages and remaining
 *     lifetimes stay what they were on the monotonic clock)
 *
 * The comparison runs on a periodic tick and on every `now()` of the clock this wraps,
 * so a stamp taken for a deadline decision never mixes the two sides of a step: the
 * listeners run before that `now()` returns. Normal NTP slewing (at most 500 ppm) never
 * comes near the tolerance between two checks. Timers (setTimeout) are monotonic
 * already and need nothing.
 *
 * A step while outpost is not running cannot be seen: a row's age then includes the
 * power-off time, which is its true age.
 */
import type { Clock, TimerHandle } from './clock.js';
import type { Message } from './message.js';

/** Milliseconds of a clock that never steps (performance.now() in production). */
export type MonotonicNow = () => number;

/** Larger than any slew between two checks a second apart, smaller than any step worth seeing. */
export const STEP_TOLERANCE_MS = 2000;
/** How often the detector looks when nobody asks the time. */
export const STEP_CHECK_MS = 1000;

export type ClockStepListener = (deltaMs: number) => void;

/**
 * A Clock whose `now()` is the wrapped clock's wall time, checked against a monotonic
 * clock on each call. Listeners are called synchronously, in registration order, from
 * inside the `now()` (or the tick) that saw the step; they must not ask the time.
 */
export class StepCheckedClock implements Clock {
  private lastWall: number;
  private lastMono: number;
  private readonly listeners: ClockStepListener[] = [];
  private tick: TimerHandle | undefined;
  private notifying = false;
  /** Steps seen so far and the size of the last one (ms, signed). */
  steps = 0;
  lastStepMs = 0;

  constructor(
    private readonly base: Clock,
    private readonly mono: MonotonicNow,
    private readonly toleranceMs = STEP_TOLERANCE_MS,
  ) {
    this.lastWall = base.now();
    this.lastMono = mono();
  }

  now(): number {
    const wall = this.base.now();
    const mono = this.mono();
    const delta = wall - this.lastWall - (mono - this.lastMono);
    this.lastWall = wall;
    this.lastMono = mono;
    if (Math.abs(delta) > this.toleranceMs && !this.notifying) this.stepped(Math.round(delta));
    return wall;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.base.setTimeout(fn, ms);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.base.setInterval(fn, ms);
  }

  onStep(fn: ClockStepListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Starts the periodic check (idempotent); the timer does not keep the process alive. */
  start(intervalMs = STEP_CHECK_MS): void {
    this.tick ??= this.base.setInterval(() => void this.now(), intervalMs);
  }

  stop(): void {
    this.tick?.cancel();
    this.tick = undefined;
  }

  private stepped(delta: number): void {
    this.steps++;
    this.lastStepMs = delta;
    this.notifying = true;
    try {
      for (const fn of [...this.listeners]) fn(delta);
    } finally {
      this.notifying = false;
    }
  }
}

/** "3 d 4 h", "12 min 5 s", "2.5 s": a step's size for the log line. */
export function formatStep(ms: number): string {
  let s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${(Math.abs(ms) / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0) parts.push(`${n} ${unit}`);
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/**
 * Moves the in-memory stamps of one step, each object once: a Message is shared by the
 * retained store, session queues, MQTT-SN queues and the journal's pending writes, and a
 * Will by a session and its pending record.
 */
export class StampMover {
  private readonly moved = new Set<object>();
  private readonly kept: WeakSet<object>[] = [];

  constructor(readonly deltaMs: number) {}

  /**
   * Objects whose stamps an earlier run took (restored at start): they are not moved. That
   * run's clock stamped them; their age includes the time the gateway was off.
   */
  keep(objects: WeakSet<object>): void {
    this.kept.push(objects);
  }

  private skips(o: object): boolean {
    return this.moved.has(o) || this.kept.some((k) => k.has(o));
  }

  /** Moves `m.expiresAt` (Message Expiry) once. */
  message(m: Message): void {
    if (m.expiresAt === undefined || this.skips(m)) return;
    this.moved.add(m);
    m.expiresAt += this.deltaMs;
  }

  /** Moves a pending Will's due time once. */
  will(w: { due?: number | undefined } | undefined): void {
    if (w?.due === undefined || this.skips(w)) return;
    this.moved.add(w);
    w.due += this.deltaMs;
  }

  /** A stamp of the caller's own, undefined staying undefined. */
  at<T extends number | undefined>(t: T): T {
    return (t === undefined ? t : t + this.deltaMs) as T;
  }
}
