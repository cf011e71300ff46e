/**
 * nmea: NMEA 0183 from GPS/GNSS receivers: "$GPGGA,...*47\r\n". The checksum (XOR of the
 * characters between "$" and "*", two hex digits) is checked; a sentence whose checksum does
 * not match is a counted checksum failure, never a reading.
 */
import { defineDriver, lineFraming, lineOptionsShape, lineText, z, type CommandResult, type ParseResult, type Reading } from '../../src/serial/driver-api.js';
import { GsaTally } from './gsa-tally.js';
import { decodeSentence, METRICS, SENTENCES, type SentenceType } from './sentences.js';

export const options = z
  .object({
    ...lineOptionsShape,
    max_line: lineOptionsShape.max_line.default(256).describe('Longest line in bytes: NMEA allows 82 per sentence; some receivers send longer proprietary ones, or glue sentences together when they drop line endings.'),
    checksum: z.enum(['required', 'optional']).default('required').describe('required: drop sentences without "*hh"; optional: check it only when present.'),
    sentences: z.array(z.enum(SENTENCES)).min(1).default([...SENTENCES]).describe('Sentence types to decode; others are ignored without counting.'),
  })
  .strict();

export type NmeaOptions = z.output<typeof options>;

export function nmeaChecksum(body: string): number {
  let x = 0;
  for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i);
  return x;
}

/**
 * `now`: the gateway's clock (ms, the driver context's; RMC's two-digit year takes its century
 * from it). `gsa`: the device's tally, which makes satellites_used the sum over the GSA of each system.
 */
export function parseNmea(text: string, o: NmeaOptions, now: number, gsa?: GsaTally): ParseResult {
  if (text.trim() === '') return { ok: true, readings: [] }; // a blank line is no failure
  const start = text.indexOf('$');
  if (start < 0) return { ok: false, error: 'decode', detail: 'no "$" sentence start' };
  const line = text.slice(start).trimEnd();
  const star = line.lastIndexOf('*');
  let body: string;
  if (star >= 0) {
    body = line.slice(1, star);
    const given = line.slice(star + 1);
    if (!/^[0-9A-Fa-f]{2}$/.test(given)) return { ok: false, error: 'checksum', detail: `malformed checksum "${given}"` };
    if (parseInt(given, 16) !== nmeaChecksum(body)) return { ok: false, error: 'checksum', detail: 'checksum mismatch' };
  } else {
    if (o.checksum === 'required') return { ok: false, error: 'checksum', detail: 'sentence without checksum' };
    body = line.slice(1);
  }
  const fields = body.split(',');
  const address = fields[0]!;
  // Proprietary sentences ("$P…") and types we do not decode are not failures.
  if (address.startsWith('P') || address.length !== 5) return { ok: true, readings: [] };
  const type = address.slice(2) as SentenceType;
  if (!o.sentences.includes(type)) return { ok: true, readings: [] };
  const decoded = decodeSentence(type, fields.slice(1), now);
  if (typeof decoded === 'string') return { ok: false, error: 'decode', detail: decoded };
  if (type === 'GSA' && gsa !== undefined) {
    const used = decoded.find((r) => r.metric === 'satellites_used');
    if (used !== undefined) used.value = gsa.add(address.slice(0, 2), fields[18], fields[2], fields.slice(3, 15).filter((p) => p !== ''));
  }
  return { ok: true, readings: decoded };
}

/**
 * One line as the port delivered it, which may hold several sentences: a receiver whose
 * output buffer overran drops line endings and glues "$GPGGA…*47$GPRMC…*4A" together, or
 * a truncated sentence runs into the next one. "$" never occurs inside a sentence (NMEA
 * 0183 reserves it), so each "$" starts one: every complete sentence is read and every
 * broken one counted on its own. A failure alongside good sentences goes to `fail`; a line
 * of failures only returns the last one, as a line of one sentence does.
 */
export function parseLine(text: string, o: NmeaOptions, now: number, fail: (f: Extract<ParseResult, { ok: false }>) => void, gsa?: GsaTally): ParseResult {
  const first = text.indexOf('$');
  if (first < 0 || text.indexOf('$', first + 1) < 0) return parseNmea(text, o, now, gsa);
  const readings: Reading[] = [];
  const failures: Array<Extract<ParseResult, { ok: false }>> = [];
  let good = 0;
  for (let at = first; at >= 0; ) {
    const next = text.indexOf('$', at + 1);
    const r = parseNmea(next < 0 ? text.slice(at) : text.slice(at, next), o, now, gsa);
    if (r.ok) {
      good++;
      readings.push(...r.readings);
    } else failures.push(r);
    at = next;
  }
  const result: ParseResult = good > 0 ? { ok: true, readings } : failures.pop()!;
  for (const f of failures) fail(f);
  return result;
}

/** "PMTK220,1000" → "$PMTK220,1000*1F\r\n"; a complete "$…*hh" sentence is sent as it is. */
export function nmeaCommandLine(payload: string): string | CommandResult {
  const text = payload.trim();
  if (text === '' || /[\r\n]/.test(text)) return { ok: false, detail: 'a command must be one sentence' };
  if (/^\$.*\*[0-9A-Fa-f]{2}$/.test(text)) return `${text}\r\n`;
  const body = text.startsWith('$') ? text.slice(1) : text;
  return `$${body}*${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

export const nmea = defineDriver({
  name: 'nmea',
  summary: 'NMEA 0183 GPS/GNSS sentences (GGA, GNS, RMC, VTG, GSA) with checksum check.',
  options,
  metricNames: (o) => [...new Set(o.sentences.flatMap((s) => METRICS[s]))],
  framing: lineFraming,
  create: (o, ctx) => {
    const gsa = new GsaTally();
    return {
      parse: (frame) => parseLine(lineText(frame), o, ctx.now(), (f) => ctx.fail(f.error, f.detail), gsa),
      command: async (payload) => {
        const line = nmeaCommandLine(payload.toString('utf8'));
        if (typeof line !== 'string') return line;
        await ctx.write(Buffer.from(line, 'latin1'));
        return { ok: true, value: line.trimEnd() };
      },
    };
  },
});
