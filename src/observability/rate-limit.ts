/**
 * Logs at most `burst` lines per key per window; the rest are counted and summarised
 * in the next line that gets through, so a garbage flood cannot flood the journal.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';

export class LogRateLimiter {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 10_000,
    private readonly burst = 5,
    private readonly maxKeys = 1000,
  ) {}

  /** Returns the number of suppressed lines to report, or -1 when this line must be skipped. */
  take(key: string): number {
    const now = this.clock.now();
    let w = this.windows.get(key);
    // A window that starts in the future began before a step of the wall clock back: a new one.
    if (w === undefined || now - w.start >= this.windowMs || now < w.start) {
      const suppressed = w?.suppressed ?? 0;
      if (this.windows.size >= this.maxKeys) this.windows.clear();
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(key, w);
      w.count = 1;
      return suppressed;
    }
    if (w.count < this.burst) {
      w.count++;
      const s = w.suppressed;
      w.suppressed = 0;
      return s;
    }
    w.suppressed++;
    return -1;
  }

  /**
   * Writes `msg` at `level` unless the key's window is spent; the first line that gets
   * through after skipped ones carries their number as `suppressed`.
   */
  write(log: Logger, level: 'debug' | 'info' | 'warn' | 'error', key: string, fields: object, msg: string): void {
    const suppressed = this.take(key);
    if (suppressed >= 0) log[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}
