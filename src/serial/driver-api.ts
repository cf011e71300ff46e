/**
 * The driver API: the only project module a driver (drivers/<name>/) imports. It re-exports
 * zod, the unit schemas and the framers, so a driver folder is self-contained:
 *
 *   options (zod, validated at config load) ─▶ framing(options) ─▶ host builds the framer
 *   create(options, ctx) ─▶ parse(frame) → readings        unsolicited data (lines, NMEA)
 *                         ─▶ poll.run() → readings          request/response (Modbus)
 *                         ─▶ command(payload) → result      the device's command topic
 *
 * Drivers never throw on device data: a bad frame is a ParseResult with ok: false, which the
 * host counts and logs rate-limited. Drivers never touch the port: ctx.write and ctx.transact
 * go through the host, which serialises access when several devices share one bus.
 */
import { isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { duration, size } from '../config/unit-schema.js';

export { z, duration, size };
export type { DiscardReason, FrameCheck, Framer, FrameSink, FramingSpec } from './framer.js';
export { DelimiterFramer, GapFramer, HeaderFramer } from './framers/index.js';

export type MetricValue = number | boolean | string;

/** One measured value. The device map renames, scales and routes it to a topic. */
export interface Reading {
  metric: string;
  value: MetricValue;
  /** The driver's unit (e.g. "m" for an NMEA altitude); the device map may override it. */
  unit?: string;
  /** When it was measured, ms since the epoch, if the device says (GPS time); default: now. */
  ts?: number;
}

export type FailureKind = 'checksum' | 'decode' | 'timeout' | 'exception';

export type ParseResult = { ok: true; readings: Reading[] } | { ok: false; error: FailureKind; detail: string };

export interface PollResult {
  readings: Reading[];
  /** False when the device did not answer at all (it is then reported offline). */
  reachable: boolean;
}

export interface CommandResult {
  ok: boolean;
  /** A short sentence for the result topic when ok is false (or extra detail when true). */
  detail?: string;
  /** Whatever the device answered, for the result payload. */
  value?: unknown;
}

export interface LineSettings {
  baud: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: 1 | 1.5 | 2;
}

export interface TransactOptions {
  /** How long to wait for the answer. */
  timeoutMs: number;
  /** Whether a frame is the answer to this request (others are counted as stray and dropped). */
  accept(frame: Buffer): boolean;
}

export interface DriverContext {
  readonly device: string;
  readonly line: LineSettings;
  now(): number;
  /** Writes bytes to the port; rejects when the port is closed. */
  write(data: Buffer): Promise<void>;
  /**
   * Sends a request and waits for the frame that answers it; undefined on timeout or when the
   * port is closed. One transaction at a time per port, with the line's inter-frame silence
   * between them, so devices sharing a bus never talk over each other.
   */
  transact(request: Buffer, opts: TransactOptions): Promise<Buffer | undefined>;
  /** Counts a failure (CRC, timeout, exception reply) and logs it rate-limited. */
  fail(kind: FailureKind, detail: string): void;
}

export interface DriverInstance {
  /** Frames the device sends by itself. */
  parse?(frame: Buffer): ParseResult;
  /** Request/response devices: the host calls run() every intervalMs after the previous run ended. */
  poll?: { intervalMs: number; run(): Promise<PollResult> };
  /** A message on the device's command topic. Omit when the device takes no commands. */
  command?(payload: Buffer): Promise<CommandResult>;
}

export interface DriverDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  /** One line for docs and `outpost check` messages. */
  readonly summary: string;
  /** Strict zod schema of the device's `options:`; every key has a default where it can. */
  readonly options: S;
  /** Several devices may name the same port (an RS-485 bus): they share its framer and take turns. */
  readonly shared?: boolean;
  framing(options: z.output<S>): import('./framer.js').FramingSpec;
  /**
   * The metric names the device can send, when they follow from the options (a register map,
   * a fixed sentence set): a device map naming another metric is a config error (a typo would
   * otherwise leave the metric unscaled). Omit when any name may come (JSON keys).
   */
  metricNames?(options: z.output<S>): readonly string[];
  create(options: z.output<S>, ctx: DriverContext): DriverInstance;
}

/** Identity helper that keeps the options type flowing from the schema into framing and create. */
export function defineDriver<S extends z.ZodType>(d: DriverDefinition<S>): DriverDefinition<S> {
  return d;
}

// ---- helpers shared by the line-oriented drivers --------------------------------------

/** Options every line driver has: the line bound, the line ending and how commands are written. */
export const lineOptionsShape = {
  max_line: z.number().int().min(16).max(65_536).default(1024).describe('Longest line in bytes; longer lines are dropped and counted.'),
  line_ending: z.enum(['lf', 'crlf']).default('lf').describe('How lines end: lf ("\\n", a trailing "\\r" is ignored) or crlf.'),
  idle_timeout: duration({ min: 1 })
    .optional()
    .describe('Drop a half line after this much silence (e.g. 2s), so a pulled cable does not glue two lines.'),
};

export function lineFraming(o: { max_line: number; line_ending: 'lf' | 'crlf'; idle_timeout?: number }): import('./framer.js').FramingSpec {
  return { type: 'delimiter', delimiter: Buffer.from(o.line_ending === 'crlf' ? '\r\n' : '\n'), maxLength: o.max_line, idleMs: o.idle_timeout };
}

/** A frame as text without a trailing "\r" (lf lines from devices that send CRLF). */
export function lineText(frame: Buffer): string {
  const end = frame.length > 0 && frame[frame.length - 1] === 0x0d ? frame.length - 1 : frame.length;
  return frame.toString('utf8', 0, end);
}

/** Whether a frame's bytes are valid UTF-8 (if not, lineText has put U+FFFD where they were). */
export function validUtf8(frame: Buffer): boolean {
  return isUtf8(frame);
}

/** A value as a device sends it in text ("21.5", "true", "on") → number, boolean, or the text. */
export function textValue(raw: string): MetricValue {
  const t = raw.trim();
  if (t !== '' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  const lower = t.toLowerCase();
  if (lower === 'true' || lower === 'on') return true;
  if (lower === 'false' || lower === 'off') return false;
  return t;
}

/** The command of a line device: the payload is written as one line (its own line ending removed). */
export function lineCommand(ctx: DriverContext, lineEnding: 'lf' | 'crlf'): (payload: Buffer) => Promise<CommandResult> {
  const eol = Buffer.from(lineEnding === 'crlf' ? '\r\n' : '\n');
  return async (payload) => {
    let end = payload.length;
    while (end > 0 && (payload[end - 1] === 0x0a || payload[end - 1] === 0x0d)) end--;
    if (payload.subarray(0, end).includes(0x0a)) return { ok: false, detail: 'a command must be one line' };
    await ctx.write(Buffer.concat([payload.subarray(0, end), eol]));
    return { ok: true };
  };
}

/** A device's time field (epoch seconds or ms, or an ISO 8601 string) → ms, or undefined. */
export function timestampValue(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v < 1e11 ? Math.round(v * 1000) : Math.round(v);
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}
