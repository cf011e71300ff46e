/**
 * Multi-GNSS receivers send $GNGNS instead of (or beside) GGA: its position, fix and satellites
 * are read the way GGA's are, with one mode letter per constellation. And RMC's two-digit year
 * takes the century that puts the date within -50..+49 years of the gateway's clock (the
 * driver context's, never Date.now()).
 */
import { describe, expect, it } from 'vitest';
import { nmea, nmeaChecksum, options } from '../../drivers/nmea/index.js';
import { fixTime, fullYear } from '../../drivers/nmea/sentences.js';
import type { ParseResult } from '../../src/serial/driver-api.js';
import { flat, runDriver, stubContext } from '../helpers/driver-run.js';

const sentence = (body: string) => `$${body}*${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
const run = (...bodies: string[]) => runDriver(nmea, {}, Buffer.from(bodies.map(sentence).join('')), 13);

describe('nmea GNS sentences', () => {
  it('give position, fix quality, satellites, hdop and altitude as GGA does, from a u-blox $GNGNS with four constellations', () => {
    const r = run('GNGNS,145339.00,4724.5292786,N,00937.0838968,E,AANA,22,0.5,367.334,100.143,,,V');
    expect(r.failures).toEqual([]);
    expect(flat(r)).toEqual([['latitude=47.4088213', 'longitude=9.6180649', 'fix_quality=1', 'satellites=22', 'hdop=0.5', 'altitude=367.334']]);
    expect(r.readings[0]![0]).toEqual({ metric: 'latitude', value: 47.4088213, unit: '°' });
    expect(r.readings[0]![5]).toEqual({ metric: 'altitude', value: 367.334, unit: 'm' });
  });

  it('read the same metrics from a GNS as from the GGA of the same fix', () => {
    const r = run(
      'GNGGA,092314.00,4807.03812,N,01131.00024,W,1,08,1.01,545.4,M,46.9,M,,',
      'GNGNS,092314.00,4807.03812,N,01131.00024,W,AN,08,1.01,545.4,46.9,,',
    );
    expect(r.failures).toEqual([]);
    expect(flat(r)[1]).toEqual(flat(r)[0]);
  });

  it('take the fix quality of the best constellation: RTK fixed over float over differential over autonomous', () => {
    const quality = (mode: string) => flat(run(`GNGNS,014035.00,4332.69262,S,17235.48549,E,${mode},13,0.9,25.63,11.24,,`))[0]![2];
    expect(quality('RR')).toBe('fix_quality=4');
    expect(quality('AF')).toBe('fix_quality=5');
    expect(quality('NDA')).toBe('fix_quality=2');
    expect(quality('NNA')).toBe('fix_quality=1');
    expect(quality('E')).toBe('fix_quality=6');
  });

  it('give no position or altitude when every constellation says N, only the fix quality 0, satellites and hdop', () => {
    const r = run('GNGNS,235947.00,0000.0000,N,00000.0000,E,NNNN,00,99.99,0.0,0.0,,,V', 'GPGNS,235947.00,,,,,N,00,99.99,,,,');
    expect(r.failures).toEqual([]);
    expect(flat(r)).toEqual([['fix_quality=0', 'satellites=0', 'hdop=99.99'], ['fix_quality=0', 'satellites=0', 'hdop=99.99']]);
  });

  it('ignore the per-system GNS with an empty mode that follows a $GNGNS, so satellites stays the total', () => {
    const r = run(
      'GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,U',
      'GPGNS,014035.00,,,,,,8,,,,1.0,23',
      'GLGNS,014035.00,,,,,,5,,,,1.0,23',
    );
    expect(r.failures).toEqual([]);
    expect(r.readings.flat().filter((x) => x.metric === 'satellites').map((x) => x.value)).toEqual([13]);
  });

  it('count a truncated GNS or one with a malformed mode field as a decode failure', () => {
    const r = run('GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13', 'GNGNS,014035.00,4332.69262,S,17235.48549,E,r1,13,0.9,25.63,11.24,,');
    expect(r.readings).toEqual([]);
    expect(r.failures.map((f) => f.detail)).toEqual(['GNS has 7 fields, expected at least 10', 'GNS mode indicator "r1" is not one letter per constellation']);
  });

  it('are among the default sentences, and left alone when the sentences option leaves them out', () => {
    expect(options.parse({}).sentences).toContain('GNS');
    const r = runDriver(nmea, { sentences: ['GGA'] }, Buffer.from(sentence('GNGNS,145339.00,4724.5292786,N,00937.0838968,E,AANA,22,0.5,367.334,100.143,,,V')));
    expect(r).toMatchObject({ readings: [[]], failures: [] });
  });
});

describe('nmea RMC dates with a two-digit year', () => {
  const at = (iso: string) => Date.parse(iso);

  it('take the century that puts the date within -50..+49 years of now', () => {
    const now = at('2026-11-29T00:00:00Z');
    expect(fullYear(99, now)).toBe(1999);
    expect(fullYear(76, now)).toBe(1976); // 50 years back
    expect(fullYear(75, now)).toBe(2075); // 49 years ahead
    expect(fullYear(26, now)).toBe(2026);
    expect(fullYear(0, now)).toBe(2000);
    const later = at('2080-01-01T00:00:00Z');
    expect(fullYear(20, later)).toBe(2120);
    expect(fullYear(31, later)).toBe(2031);
    expect(fixTime('235959.99', '311299', now)).toBe(Date.UTC(1999, 11, 31, 23, 59, 59, 990));
  });

  it('stamp readings through the driver context\'s clock, not the machine\'s', () => {
    const rmc = sentence('GPRMC,092314.00,A,4807.03812,N,01131.00024,E,0.12,77.50,150620,,,A');
    const stamp = (now: number): number | undefined => {
      const failures: Extract<ParseResult, { ok: false }>[] = [];
      const inst = nmea.create(options.parse({}), { ...stubContext([], 'gps', failures), now: () => now });
      const r = inst.parse!(Buffer.from(rmc.trimEnd()));
      expect(failures).toEqual([]);
      return r.ok ? r.readings[0]!.ts : undefined;
    };
    expect(stamp(at('2026-11-29T00:00:00Z'))).toBe(Date.UTC(2020, 5, 15, 9, 23, 14));
    expect(stamp(at('2080-01-01T00:00:00Z'))).toBe(Date.UTC(2120, 5, 15, 9, 23, 14));
    expect(stamp(at('1990-01-01T00:00:00Z'))).toBe(Date.UTC(2020, 5, 15, 9, 23, 14));
    expect(stamp(at('1960-01-01T00:00:00Z'))).toBe(Date.UTC(1920, 5, 15, 9, 23, 14));
  });
});
