/**
 * zod schemas for human units in the config (durations, sizes), shared by the gateway
 * schema, the serial device maps and driver option schemas. In its own file so driver
 * option schemas can use it without importing (and cycling through) the whole config schema.
 */
import { z } from 'zod';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';

const DURATION_HINT = 'expected a duration such as 500ms, 10s, 5m, 2h or 7d (a plain number is seconds)';
const SIZE_HINT = 'expected a size such as 512KiB or 1MiB (a plain number is bytes)';

// Mirrors the parsers in units.ts, so editors flag a bad unit before the gateway does.
const DURATION_PATTERN = /^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$/;
const SIZE_PATTERN = /^\s*\d+(\.\d+)?\s*(([kKmMgGtT][iI]?)?[bB])?\s*$/;

export interface UnitBounds {
  min?: number;
  max?: number;
  /** MQTT carries some intervals in whole seconds; refuse what it cannot express. */
  wholeSeconds?: boolean;
}

function rangeMessage(bounds: UnitBounds, format: (n: number) => string): string {
  if (bounds.min !== undefined && bounds.max !== undefined) {
    return `must be between ${format(bounds.min)} and ${format(bounds.max)}`;
  }
  if (bounds.min !== undefined) return `must be at least ${format(bounds.min)}`;
  return `must be at most ${format(bounds.max!)}`;
}

function unitSchema(
  pattern: RegExp,
  hint: string,
  parse: (raw: number | string) => number | undefined,
  format: (n: number) => string,
  bounds: UnitBounds,
) {
  return z
    // A negative number gets the key's own range, not "at least 0" (max_packet_size starts at 64B).
    .union([z.number().min(0, { error: () => rangeMessage({ ...bounds, min: bounds.min ?? 0 }, format) }), z.string().regex(pattern, { error: () => hint })], { error: () => hint })
    .transform((raw, ctx) => {
      const value = parse(raw);
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: hint });
        return z.NEVER;
      }
      if ((bounds.min !== undefined && value < bounds.min) || (bounds.max !== undefined && value > bounds.max)) {
        ctx.addIssue({ code: 'custom', message: rangeMessage(bounds, format) });
        return z.NEVER;
      }
      if (bounds.wholeSeconds && value % 1000 !== 0) {
        ctx.addIssue({ code: 'custom', message: 'must be a whole number of seconds' });
        return z.NEVER;
      }
      return value;
    });
}

/** A duration in the file; milliseconds in the parsed config. */
export function duration(bounds: UnitBounds = {}) {
  return unitSchema(DURATION_PATTERN, DURATION_HINT, parseDuration, formatDuration, bounds);
}

/** A size in the file; bytes in the parsed config. */
export function size(bounds: UnitBounds = {}) {
  return unitSchema(SIZE_PATTERN, SIZE_HINT, parseSize, formatSize, bounds);
}
