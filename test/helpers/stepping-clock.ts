/**
 * A wall clock that can be stepped (as NTP steps a Raspberry Pi's clock) over a FakeClock
 * that stands for the monotonic clock: timers and `advance` follow the monotonic time,
 * `step(ms)` moves only the wall time, and `clock` sees the step as production does.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { StepCheckedClock } from '../../src/core/clock-steps.js';
import { FakeClock } from './fake-clock.js';

export class SteppingWall implements Clock {
  readonly mono: FakeClock;
  private offset = 0;
  /** The clock to hand to the code under test: step-checked against `mono`. */
  clock: StepCheckedClock;

  constructor(start = 1_700_000_000_000) {
    this.mono = new FakeClock(start);
    this.clock = new StepCheckedClock(this, () => this.mono.now());
  }

  now(): number {
    return this.mono.now() + this.offset;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.mono.setTimeout(fn, ms);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.mono.setInterval(fn, ms);
  }

  /** A new process: a new detector, which cannot see the steps that came before it. */
  restart(): void {
    this.clock = new StepCheckedClock(this, () => this.mono.now());
  }

  /** Time passes on both clocks. */
  advance(ms: number): void {
    this.mono.advance(ms);
  }

  /** The wall clock jumps by `ms`; the monotonic clock does not move. */
  step(ms: number): void {
    this.offset += ms;
  }
}

export const DAY = 86_400_000;
