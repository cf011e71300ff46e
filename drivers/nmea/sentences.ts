/**
 * NMEA 0183 sentence decoding (GGA, RMC, VTG, GSA), talker-agnostic (GP, GN, GL, GA, BD…).
 * Empty fields mean "no value" (no fix yet) and produce no reading. So do the position, speed
 * and course of a sentence that says it has no fix: an MTK3339 (Adafruit Ultimate GPS) fills
 * them with zeros until its first fix, "0000.0000,N,00000.0000,E", a position at 0°, 0°.
 * Field layouts: NMEA 0183 v4.10 §6.3 (GGA, GSA, RMC, VTG).
 */
import type { Reading } from '../../src/serial/driver-api.js';

export const SENTENCES = ['GGA', 'RMC', 'VTG', 'GSA'] as const;
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

/** hhmmss(.sss) + ddmmyy → epoch ms (UTC); undefined when either is empty. */
export function fixTime(time: string | undefined, date: string | undefined): number | undefined {
  const t = /^(\d{2})(\d{2})(\d{2})(\.\d+)?$/.exec(time ?? '');
  const d = /^(\d{2})(\d{2})(\d{2})$/.exec(date ?? '');
  if (!t || !d) return undefined;
  const year = 2000 + Number(d[3]); // NMEA has two-digit years; GPS receivers in service are post-2000
  const ms = Math.round(Number(t[4] ?? 0) * 1000);
  const at = Date.UTC(year, Number(d[2]) - 1, Number(d[1]), Number(t[1]), Number(t[2]), Number(t[3]), ms);
  return Number.isNaN(at) ? undefined : at;
}

/** The metrics each sentence type gives (see decodeSentence). */
export const METRICS: Record<SentenceType, readonly string[]> = {
  GGA: ['latitude', 'longitude', 'fix_quality', 'satellites', 'hdop', 'altitude'],
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

/** Fields after the address field; returns the readings, or a string saying what is malformed. */
export function decodeSentence(type: SentenceType, f: string[]): Reading[] | string {
  const out: Out = [];
  switch (type) {
    case 'GGA': {
      // time, lat, N/S, lon, E/W, quality, satellites, hdop, altitude, M, geoid separation, M, …
      if (f.length < 14) return `GGA has ${f.length} fields, expected 14`;
      const quality = num(f[5]);
      const fix = quality !== undefined && quality > 0; // 0: invalid
      if (fix) put(out, 'latitude', coordinate(f[1], f[2]), '°');
      if (fix) put(out, 'longitude', coordinate(f[3], f[4]), '°');
      put(out, 'fix_quality', quality);
      put(out, 'satellites', num(f[6]));
      put(out, 'hdop', num(f[7]));
      if (fix) put(out, 'altitude', num(f[8]), 'm');
      return out;
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
      const ts = fixTime(f[0], f[8]);
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
