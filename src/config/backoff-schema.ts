/**
 * A reconnect or reopen delay range (decorrelated jitter between base and cap, core/backoff.ts),
 * for bridges[].backoff and serial.reopen.
 *
 * Which keys the user wrote matters, so neither has a plain default:
 *   both written, base > cap   refused: the two wishes contradict each other (it was clamped silently)
 *   only cap, below the default base    base = cap: a lone `cap: 500ms` asks for quick retries
 *   only base, above the default cap    cap = base: a lone `base: 2m` asks for slow retries
 */
import { z } from 'zod';
import { duration } from './unit-schema.js';
import { formatDuration } from './units.js';

export function backoffSchema(defaults: { base: number; cap: number }) {
  return z
    .object({
      base: duration({ min: 10 })
        .optional()
        .describe(`First delay (and the shortest). Default ${formatDuration(defaults.base)}, or cap when only cap is set and it is shorter.`),
      cap: duration({ min: 10 })
        .optional()
        .describe(`Longest delay. Default ${formatDuration(defaults.cap)}, or base when only base is set and it is longer.`),
    })
    .strict()
    .superRefine((b, ctx) => {
      if (typeof b.base === 'number' && typeof b.cap === 'number' && b.base > b.cap) {
        ctx.addIssue({
          code: 'custom',
          path: ['base'],
          params: { plain: true },
          message: `is ${formatDuration(b.base)}, longer than cap (${formatDuration(b.cap)}): the first delay cannot exceed the longest; lower base to at most ${formatDuration(b.cap)} or raise cap`,
        });
      }
    })
    .transform((b) => {
      const base = b.base ?? Math.min(defaults.base, b.cap ?? defaults.base);
      const cap = b.cap ?? Math.max(defaults.cap, base);
      return { base, cap };
    })
    .prefault({});
}
