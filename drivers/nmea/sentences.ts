/**
 * NMEA 0183 sentence decoding (GGA, GNS, RMC, VTG, GSA), talker-agnostic (GP, GN, GL, GA, BD…).
 * Empty fields mean "no value" (no fix yet) and produce no reading. So do the position, speed
 * and course of a sentence that says it has no fix: an MTK3339 (Adafruit Ultimate GPS) fills
 * them with zeros until its first fix, "0000.0000,N,00000.0000,E", a position at 0°, 0°.
 * Field layouts: NMEA 0183 v4.10 §6.3 (GGA, GNS, GSA, RMC, VTG).
 */
import type { Reading } from '../../src/serial/driver-api.js';

export const SENTENCES = ['GGA', 'GNS', 'RMC', 'VTG', 'GSA'] as const;
export type SentenceType = (typeof SENTENCES)[number];

/** "4807.038","N" → 48.1173; undefined when empty or malformed. */
export function coordinate(value: string | undefined, hemisphere: string | undefined): number | undefined {
  if (!value || !hemisphere) return undefined;
  const m = /^(\d{2,3})(\d{2}(?:\.\d+)?)$/.exec(value);
  if (!m) return undefined;
  const deg = Number(m[1]) + Number(m[2]) / 60;
  if (hemisphere === 'S' || hemisphere === 'W') return -round(deg, 7);
  if (hemisphere === 'N' || hemisphere === 'E') return round(deg, 7);
  return undefined;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * The full year of a two-digit NMEA year: the one within -50..+49 years of `now` (the
 * gateway's clock, ms). A receiver's "99" is 1999 in 2026 (an MTK3339's unset clock says
 * 1999-12-04), not 2099; in 2080 "20" is 2120 and "31" 2031.
 */
export function fullYear(yy: number, now: number): number {
  const low = new Date(now).getUTCFullYear() - 50;
  return low + ((((yy - low) % 100) + 100) % 100);
}

/** hhmmss(.sss) + ddmmyy → epoch ms (UTC), the century from `now` (fullYear); undefined when either is empty. */
export function fixTime(time: string | undefined, date: string | undefined, now: number): number | undefined {
  const t = /^(\d{2})(\d{2})(\d{2})(\.\d+)?$/.exec(time ?? '');
  const d = /^(\d{2})(\d{2})(\d{2})$/.exec(date ?? '');
  if (!t || !d) return undefined;
  const year = fullYear(Number(d[3]), now);
  const ms = Math.round(Number(t[4] ?? 0) * 1000);
  const at = Date.UTC(year, Number(d[2]) - 1, Number(d[1]), Number(t[1]), Number(t[2]), Number(t[3]), ms);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * GNS mode indicator characters (one per constellation: GPS, GLONASS, Galileo, BeiDou, …), best
 * first, with the GGA fix quality each stands for: R RTK fixed 4, F RTK float 5, P precise 3,
 * D differential 2, A autonomous 1, E estimated (dead reckoning) 6, M manual 7, S simulator 8.
 * N: that system is not used, or there is no fix; N in every position means no fix at all.
 */
const GNS_MODES: ReadonlyArray<[string, number]> = [['R', 4], ['F', 5], ['P', 3], ['D', 2], ['A', 1], ['E', 6], ['M', 7], ['S', 8]];

/** The GGA fix quality of a GNS mode field: its best constellation's; 0 when every one says N (or none is known). */
export function gnsQuality(mode: string): number {
  for (const [c, quality] of GNS_MODES) if (mode.includes(c)) return quality;
  return 0;
}

/** The metrics each sentence type gives (see decodeSentence). */
export const METRICS: Record<SentenceType, readonly string[]> = {
  GGA: ['latitude', 'longitude', 'fix_quality', 'satellites', 'hdop', 'altitude'],
  GNS: ['latitude', 'longitude', 'fix_quality', 'satellites', 'hdop', 'altitude'],
  RMC: ['fix_valid', 'latitude', 'longitude', 'speed_kn', 'course'],
  VTG: ['course', 'speed_kn', 'speed_kmh'],
  GSA: ['fix_type', 'satellites_used', 'pdop', 'hdop', 'vdop'],
};

type Out = Reading[];
const put = (out: Out, metric: string, value: number | boolean | undefined, unit?: string, ts?: number): void => {
  if (value === undefined) return;
  const r: Reading = { metric, value };
  if (unit !== undefined) r.unit = unit;
  if (ts !== undefined) r.ts = ts;
  out.push(r);
};

/**
 * Position, fix quality, satellites, hdop and altitude of a GGA or GNS sentence (the same
 * fields 1-8): the position and altitude only with a fix (quality above 0, 0 = invalid).
 */
function putFix(out: Out, f: string[], quality: number | undefined): Out {
  const fix = quality !== undefined && quality > 0;
  if (fix) put(out, 'latitude', coordinate(f[1], f[2]), '°');
  if (fix) put(out, 'longitude', coordinate(f[3], f[4]), '°');
  put(out, 'fix_quality', quality);
  put(out, 'satellites', num(f[6]));
  put(out, 'hdop', num(f[7]));
  if (fix) put(out, 'altitude', num(f[8]), 'm');
  return out;
}

/**
 * Fields after the address field; returns the readings, or a string saying what is malformed.
 * `now`: the gateway's clock (ms), for the century of RMC's two-digit year.
 */
export function decodeSentence(type: SentenceType, f: string[], now: number): Reading[] | string {
  const out: Out = [];
  switch (type) {
    case 'GGA': {
      // time, lat, N/S, lon, E/W, quality, satellites, hdop, altitude, M, geoid separation, M, …
      if (f.length < 14) return `GGA has ${f.length} fields, expected 14`;
      return putFix(out, f, num(f[5]));
    }
    case 'GNS': {
      // time, lat, N/S, lon, E/W, mode (a character per constellation), satellites, hdop,
      // altitude (MSL), geoid separation, [age of differential data, station id, navigational status]
      if (f.length < 10) return `GNS has ${f.length} fields, expected at least 10`;
      const mode = f[5]!;
      // An empty mode: the per-system GNS some receivers send after the $GNGNS (Trimble:
      // "$GPGNS,014035.00,,,,,,8,,,,1.0,23"), with that system's satellites only; read as a
      // fix, satellites would flap between the total and each system's count.
      if (mode === '') return out;
      if (!/^[A-Z]+$/.test(mode)) return `GNS mode indicator "${mode}" is not one letter per constellation`;
      return putFix(out, f, gnsQuality(mode));
    }
    case 'RMC': {
      // time, status A/V, lat, N/S, lon, E/W, speed kn, course, date, variation, E/W, [mode]
      if (f.length < 11) return `RMC has ${f.length} fields, expected at least 11`;
      // Status V (void), or mode N (not valid, NMEA 2.3): only fix_valid, at the arrival time,
      // since the receiver's clock may not be set either (an MTK3339 says 1999-12-04).
      if (f[1] !== 'A' || f[11] === 'N') {
        put(out, 'fix_valid', false);
        return out;
      }
      const ts = fixTime(f[0], f[8], now);
      put(out, 'fix_valid', true, undefined, ts);
      put(out, 'latitude', coordinate(f[2], f[3]), '°', ts);
      put(out, 'longitude', coordinate(f[4], f[5]), '°', ts);
      put(out, 'speed_kn', num(f[6]), 'kn', ts);
      put(out, 'course', num(f[7]), '°', ts);
      return out;
    }
    case 'VTG': {
      // course true, T, course magnetic, M, speed kn, N, speed km/h, K, [mode]
      if (f.length < 8) return `VTG has ${f.length} fields, expected at least 8`;
      if (f[8] === 'N') return out; // mode N: not valid (NMEA 2.3)
      put(out, 'course', num(f[0]), '°');
      put(out, 'speed_kn', num(f[4]), 'kn');
      put(out, 'speed_kmh', num(f[6]), 'km/h');
      return out;
    }
    case 'GSA': {
      // mode A/M, fix type 1/2/3, 12 satellite PRNs, pdop, hdop, vdop, [system id]
      if (f.length < 17) return `GSA has ${f.length} fields, expected at least 17`;
      put(out, 'fix_type', num(f[1]));
      put(out, 'satellites_used', f.slice(2, 14).filter((s) => s !== '').length);
      put(out, 'pdop', num(f[14]));
      put(out, 'hdop', num(f[15]));
      put(out, 'vdop', num(f[16]));
      return out;
    }
  }
}
