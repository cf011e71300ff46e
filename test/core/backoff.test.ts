import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/core/backoff.js';

/** A random source that returns the given values in turn. */
function seq(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('Backoff (decorrelated jitter)', () => {
  const rows: { name: string; base: number; cap: number; random: number[]; delays: number[] }[] = [
    { name: 'always the low end stays at base', base: 1000, cap: 60_000, random: [0], delays: [1000, 1000, 1000] },
    { name: 'always the high end triples each time until the cap', base: 1000, cap: 60_000, random: [1], delays: [3000, 9000, 27_000, 60_000, 60_000] },
    { name: 'the midpoint lies between base and three times the previous delay', base: 1000, cap: 60_000, random: [0.5], delays: [2000, 3500, 5750] },
    { name: 'the cap bounds every delay', base: 100, cap: 250, random: [1, 0.9, 1], delays: [250, 250, 250] },
    { name: 'a base above the cap is clamped to the cap', base: 5000, cap: 1000, random: [0, 1], delays: [1000, 1000] },
    { name: 'out-of-range random values are clamped into [0, 1]', base: 1000, cap: 60_000, random: [-1, 2], delays: [1000, 3000] },
  ];
  it.each(rows)('$name', ({ base, cap, random, delays }) => {
    const b = new Backoff(base, cap, seq(...random));
    expect(delays.map(() => b.next())).toEqual(delays);
  });

  it('starts again from base after a reset (a successful connection)', () => {
    const b = new Backoff(1000, 60_000, seq(1));
    b.next();
    b.next();
    expect(b.attempts).toBe(2);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(3000);
  });

  it('keeps every delay within [base, cap] for a real random source', () => {
    const b = new Backoff(1000, 60_000);
    for (let i = 0; i < 1000; i++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(60_000);
    }
  });

  it('refuses a zero or negative base or cap', () => {
    expect(() => new Backoff(0, 1000)).toThrow(RangeError);
    expect(() => new Backoff(1000, -1)).toThrow(RangeError);
  });
});
