/**
 * line-json: one JSON object per line, e.g. {"temp":21.5,"hum":40,"door":false}.
 * Every numeric or boolean field is a metric; nested objects are flattened
 * ({"env":{"t":1}} → "env.t" with the default separator).
 */
import { defineDriver, lineCommand, lineFraming, lineOptionsShape, lineText, timestampValue, validUtf8, z, type ParseResult, type Reading } from '../../src/serial/driver-api.js';

const MAX_DEPTH = 8;

export const options = z
  .object({
    ...lineOptionsShape,
    separator: z.string().min(1).max(4).default('.').describe('Joins the keys of nested objects into one metric name.'),
    strings: z.boolean().default(false).describe('Also publish string fields as metrics.'),
    timestamp_field: z.string().min(1).optional().describe('A field holding the measurement time (epoch s or ms, or ISO 8601); it is not a metric.'),
  })
  .strict();

export type LineJsonOptions = z.output<typeof options>;

/** `utf8`: false when the line's bytes were not valid UTF-8 (then U+FFFD in a key is noise). */
export function parseJsonLine(text: string, o: LineJsonOptions, utf8 = true): ParseResult {
  // A blank line (a sketch's Serial.println(), "\n\r" endings) carries nothing and is no failure.
  if (text.trim() === '') return { ok: true, readings: [] };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, error: 'decode', detail: 'not JSON' };
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { ok: false, error: 'decode', detail: 'not a JSON object' };
  const record = data as Record<string, unknown>;
  const ts = o.timestamp_field !== undefined ? timestampValue(record[o.timestamp_field]) : undefined;
  const readings: Reading[] = [];
  // Bytes that are not UTF-8 (line noise, a wrong baud rate) decode to U+FFFD; in a key they
  // would make up a metric, and a topic, that does not exist.
  let badKey = false;
  const walk = (obj: Record<string, unknown>, prefix: string, depth: number): void => {
    for (const [key, value] of Object.entries(obj)) {
      if (depth === 0 && key === o.timestamp_field) continue;
      const name = prefix + key;
      if (!utf8 && key.includes('\uFFFD')) {
        badKey = true;
        return;
      }
      if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' || (o.strings && typeof value === 'string')) {
        readings.push(ts === undefined ? { metric: name, value } : { metric: name, value, ts });
      } else if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < MAX_DEPTH) {
        walk(value as Record<string, unknown>, name + o.separator, depth + 1);
      }
    }
  };
  walk(record, '', 0);
  if (badKey) return { ok: false, error: 'decode', detail: 'a key is not valid UTF-8 (line noise?)' };
  return { ok: true, readings };
}

export const lineJson = defineDriver({
  name: 'line-json',
  summary: 'Newline-delimited JSON objects; each numeric or boolean field is a metric.',
  options,
  framing: lineFraming,
  create: (o, ctx) => ({
    parse: (frame) => parseJsonLine(lineText(frame), o, validUtf8(frame)),
    command: lineCommand(ctx, o.line_ending),
  }),
});
