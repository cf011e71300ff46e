/** A Clock driven by hand: `advance(ms)` fires due timers in order. */
import type { Clock, TimerHandle } from '../../src/core/clock.js';

interface Timer {
  id: number;
  at: number;
  ms: number;
  fn: () => void;
  repeat: boolean;
  live: boolean;
}

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, false);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, true);
  }

  /** Number of live timers (for leak checks). */
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.t = due.at;
      if (due.repeat) due.at += Math.max(1, due.ms);
      else due.live = false;
      due.fn();
    }
    this.t = end;
    this.timers = this.timers.filter((t) => t.live);
  }

  /**
   * A blocked event loop: time jumps by ms with no timer running, then every overdue
   * timer fires once, late (now() is the end of the stall), as Node does after a stall.
   */
  stall(ms: number): void {
    this.t += ms;
    const due = this.timers.filter((t) => t.live && t.at <= this.t).sort((a, b) => a.at - b.at || a.id - b.id);
    for (const timer of due) {
      if (timer.repeat) timer.at = this.t + Math.max(1, timer.ms);
      else timer.live = false;
      timer.fn();
    }
    this.timers = this.timers.filter((t) => t.live);
  }

  private add(fn: () => void, ms: number, repeat: boolean): TimerHandle {
    const timer: Timer = { id: ++this.seq, at: this.t + ms, ms, fn, repeat, live: true };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.live = false;
      },
      refresh: () => {
        timer.at = this.t + timer.ms;
        timer.live = true;
      },
    };
  }
}
