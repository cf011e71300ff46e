/**
 * Human units in the config file. Durations become milliseconds and sizes become
 * bytes, so the rest of the gateway only ever sees plain numbers.
 * The parsers return undefined instead of throwing: the schema turns that into
 * one config error with the file position.
 */

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// Case-insensitive; "KB" is 1000 bytes and "KiB" 1024, as the IEC prefixes say.
const SIZE_UNITS_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

/** A whole, non-negative, safe integer, or undefined. */
function wholeOrUndefined(n: number): number | undefined {
  // Round away float noise such as 0.1 * 3 before deciding it is not whole.
  const rounded = Math.round(n);
  if (Math.abs(n - rounded) > 1e-9 * Math.max(1, Math.abs(n))) return undefined;
  return Number.isSafeInteger(rounded) && rounded >= 0 ? rounded : undefined;
}

/**
 * `10` (seconds), `"500ms"`, `"10s"`, `"5m"`, `"2h"`, `"7d"` → milliseconds.
 * A string without a unit is seconds, like a bare number.
 */
export function parseDuration(input: number | string): number | undefined {
  if (typeof input === 'number') {
    return Number.isFinite(input) && input >= 0 ? wholeOrUndefined(input * 1000) : undefined;
  }
  const m = NUMBER_WITH_UNIT.exec(input);
  if (!m) return undefined;
  const factor = m[2] === '' ? 1000 : DURATION_UNITS_MS[m[2]!];
  if (factor === undefined) return undefined;
  return wholeOrUndefined(Number(m[1]) * factor);
}

/** `1024` (bytes), `"512B"`, `"64KB"`, `"64KiB"`, `"1MiB"`, `"2GiB"` → bytes. */
export function parseSize(input: number | string): number | undefined {
  if (typeof input === 'number') {
    return Number.isFinite(input) ? wholeOrUndefined(input) : undefined;
  }
  const m = NUMBER_WITH_UNIT.exec(input);
  if (!m) return undefined;
  const factor = m[2] === '' ? 1 : SIZE_UNITS_BYTES[m[2]!.toLowerCase()];
  if (factor === undefined) return undefined;
  return wholeOrUndefined(Number(m[1]) * factor);
}

/** Milliseconds → the shortest exact unit form, e.g. 90000 → "90s", 604800000 → "7d". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const f = DURATION_UNITS_MS[unit]!;
    if (ms % f === 0) return `${ms / f}${unit}`;
  }
  return `${ms}ms`;
}

/** Bytes → the largest exact binary unit, e.g. 1048576 → "1MiB", 1000 → "1000B". */
export function formatSize(bytes: number): string {
  if (bytes === 0) return '0B';
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const f = SIZE_UNITS_BYTES[unit.toLowerCase()]!;
    if (bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return `${bytes}B`;
}
