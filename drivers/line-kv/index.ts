/**
 * line-kv: `key=value` pairs separated by commas, semicolons or spaces, as Arduino sketches
 * print them: "temp=21.5, hum=40 door=closed". Numbers and true/false/on/off are metrics;
 * other text only with strings: true. Spaces around the "=" are allowed.
 */
import { defineDriver, lineCommand, lineFraming, lineOptionsShape, lineText, textValue, validUtf8, z, type ParseResult, type Reading } from '../../src/serial/driver-api.js';

export const options = z
  .object({
    ...lineOptionsShape,
    assign: z.enum(['=', ':']).default('=').describe('The character between a key and its value.'),
    strings: z.boolean().default(false).describe('Also publish values that are neither numbers nor booleans.'),
  })
  .strict();

export type LineKvOptions = z.output<typeof options>;

/** `utf8`: false when the line's bytes were not valid UTF-8 (then U+FFFD in a key is line noise). */
export function parseKvLine(text: string, o: LineKvOptions, utf8 = true): ParseResult {
  const a = o.assign;
  // "temp = 21.5" → "temp=21.5", so spaces can also separate pairs.
  const squeezed = text.replace(a === '=' ? /\s*=\s*/g : /\s*:\s*/g, a);
  const readings: Reading[] = [];
  let pairs = 0;
  for (const token of squeezed.split(/[\s,;]+/)) {
    if (token === '') continue;
    const at = token.indexOf(a);
    if (at <= 0) continue;
    pairs++;
    if (!utf8 && token.slice(0, at).includes('\uFFFD')) return { ok: false, error: 'decode', detail: 'a key is not valid UTF-8 (line noise?)' };
    const value = textValue(token.slice(at + 1));
    if (typeof value === 'string' && (!o.strings || value === '')) continue;
    readings.push({ metric: token.slice(0, at), value });
  }
  if (pairs === 0 && text.trim() !== '') return { ok: false, error: 'decode', detail: `no key${a}value pair` };
  return { ok: true, readings };
}

export const lineKv = defineDriver({
  name: 'line-kv',
  summary: 'key=value pairs separated by commas or spaces (Arduino-style sketches).',
  options,
  framing: lineFraming,
  create: (o, ctx) => ({
    parse: (frame) => parseKvLine(lineText(frame), o, validUtf8(frame)),
    command: lineCommand(ctx, o.line_ending),
  }),
});
