/**
 * regex: anything else that prints lines. The pattern's named groups are the metrics:
 *   pattern: 'T:(?<temp>-?\d+\.\d) H:(?<hum>\d+)%'
 * The pattern is compiled at config load, so a bad one stops start-up with its position.
 */
import { setFlagsFromString } from 'node:v8';
import { defineDriver, lineCommand, lineFraming, lineOptionsShape, lineText, textValue, z, type ParseResult, type Reading } from '../../src/serial/driver-api.js';

// A pattern with nested quantifiers, such as (a+)+, backtracks exponentially on a line that
// almost matches: 30 characters of a bad line stalled the event loop for half a minute. With
// this V8 switch, a match that backtracks 50,000 times is finished by V8's linear-time engine
// instead (same result), for every pattern that engine can run: no i or u flag, no
// backreference or lookaround, no counted repetition above 16 in node 20. It is process-wide
// and set before any pattern is compiled; patterns that never backtrack that much are untouched.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

function compile(pattern: string, flags: string): RegExp | string {
  try {
    const re = new RegExp(pattern, flags);
    if (!/\(\?<[A-Za-z_$][\w$]*>/.test(pattern)) return 'the pattern needs at least one named group, e.g. (?<temp>\\d+)';
    return re;
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
}

export const options = z
  .object({
    ...lineOptionsShape,
    pattern: z.string().min(1).describe('JavaScript regular expression; each named group (?<name>...) is a metric.'),
    flags: z.string().regex(/^[imsu]*$/, { error: () => 'use only the flags i, m, s and u' }).default('').describe('Regular expression flags (i, m, s, u).'),
    strings: z.boolean().default(false).describe('Also publish groups that are neither numbers nor booleans.'),
    unmatched: z.enum(['count', 'ignore']).default('count').describe('count: a line that does not match is a decode failure; ignore: skip it quietly (banners, prompts).'),
  })
  .strict()
  .superRefine((o, ctx) => {
    const re = compile(o.pattern, o.flags);
    if (typeof re === 'string') ctx.addIssue({ code: 'custom', path: ['pattern'], message: re });
  });

export type RegexOptions = z.output<typeof options>;

export function regexParser(o: RegexOptions): (text: string) => ParseResult {
  const re = compile(o.pattern, o.flags) as RegExp;
  return (text) => {
    // A blank line (a sketch's Serial.println()) carries nothing and is no failure, as for
    // the other line drivers; a pattern could only match it with empty groups, which give no metric.
    if (text.trim() === '') return { ok: true, readings: [] };
    const m = re.exec(text);
    if (m === null || m.groups === undefined) {
      return o.unmatched === 'ignore' ? { ok: true, readings: [] } : { ok: false, error: 'decode', detail: 'line does not match the pattern' };
    }
    const readings: Reading[] = [];
    for (const [metric, raw] of Object.entries(m.groups)) {
      if (raw === undefined) continue;
      const value = textValue(raw);
      if (typeof value === 'string' && (!o.strings || value === '')) continue;
      readings.push({ metric, value });
    }
    return { ok: true, readings };
  };
}

export const regex = defineDriver({
  name: 'regex',
  summary: 'A line regular expression whose named groups are the metrics.',
  options,
  metricNames: (o) => [...o.pattern.matchAll(/\(\?<([A-Za-z_$][\w$]*)>/g)].map((m) => m[1]!),
  framing: lineFraming,
  create: (o, ctx) => {
    const parse = regexParser(o);
    return { parse: (frame) => parse(lineText(frame)), command: lineCommand(ctx, o.line_ending) };
  },
});
