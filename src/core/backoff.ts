/**
 * Decorrelated jitter backoff (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):
 *
 *   sleep = min(cap, random_between(base, sleep * 3))      sleep₀ = base
 *
 * Spreads the reconnects of many gateways after a cloud outage (no thundering herd) while
 * still growing roughly exponentially. `reset()` after a success starts again from base.
 * The random source is injectable so tests can pin the sequence.
 */
export type RandomSource = () => number;

export class Backoff {
  private readonly base: number;
  private readonly cap: number;
  private prev: number;
  private count = 0;

  constructor(
    baseMs: number,
    capMs: number,
    private readonly random: RandomSource = Math.random,
  ) {
    if (!(baseMs > 0) || !(capMs > 0)) throw new RangeError(`backoff base and cap must be positive (got ${baseMs}, ${capMs})`);
    this.cap = capMs;
    this.base = Math.min(baseMs, capMs);
    this.prev = this.base;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.count;
  }

  /** The delay before the next attempt, in whole milliseconds, within [base, cap]. */
  next(): number {
    const hi = this.prev * 3;
    const r = Math.min(Math.max(this.random(), 0), 1);
    const delay = Math.round(Math.min(this.cap, this.base + r * (hi - this.base)));
    this.prev = delay;
    this.count++;
    return delay;
  }

  reset(): void {
    this.prev = this.base;
    this.count = 0;
  }
}
