import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nmea, nmeaCommandLine, options, parseNmea } from '../../drivers/nmea/index.js';
import { coordinate, fixTime } from '../../drivers/nmea/sentences.js';
import { flat, runDriver, stubContext } from '../helpers/driver-run.js';

const capture = readFileSync(new URL('../../drivers/nmea/sample.nmea', import.meta.url));
const o = options.parse({});
/** The gateway's clock in these tests (ms): RMC's two-digit years take their century from it. */
const NOW = Date.UTC(2026, 10, 29, 12);

describe('nmea driver', () => {
  it('decodes the captured u-blox session: no fix first, then position, speed, course, satellites and DOP', () => {
    for (const chunk of [1, 13, 512]) {
      const run = runDriver(nmea, {}, capture, chunk);
      expect(run.failures).toEqual([]);
      const all = flat(run);
      // cold start: RMC void, VTG empty, GGA quality 0, GSA no fix
      expect(all[1]).toEqual(['fix_valid=false']);
      expect(all[3]).toEqual(['fix_quality=0', 'satellites=0', 'hdop=99.99']);
      expect(all[4]).toEqual(['fix_type=1', 'satellites_used=0', 'pdop=99.99', 'hdop=99.99', 'vdop=99.99']);
      // first fix
      expect(all[7]).toEqual(['fix_valid=true', 'latitude=48.117302', 'longitude=11.5166707', 'speed_kn=0.12', 'course=77.5']);
      expect(all[8]).toEqual(['course=77.5', 'speed_kn=0.12', 'speed_kmh=0.222']);
      expect(all[9]).toEqual(['latitude=48.117302', 'longitude=11.5166707', 'fix_quality=1', 'satellites=8', 'hdop=1.01', 'altitude=545.4']);
      expect(all[10]).toEqual(['fix_type=3', 'satellites_used=8', 'pdop=1.86', 'hdop=1.01', 'vdop=1.56']);
    }
  });

  it('stamps RMC readings with the fix time and gives units', () => {
    const r = parseNmea('$GPRMC,092314.00,A,4807.03812,N,01131.00024,E,0.12,77.50,150624,,,A*66', o, NOW);
    expect(r.ok && r.readings[1]).toEqual({ metric: 'latitude', value: 48.117302, unit: '°', ts: Date.UTC(2024, 5, 15, 9, 23, 14) });
  });

  it('counts a broken checksum, a missing checksum and a truncated sentence, never a reading', () => {
    const good = '$GPGGA,092314.00,4807.03812,N,01131.00024,E,1,08,1.01,545.4,M,46.9,M,,*55';
    expect(parseNmea(good.replace('545.4', '545.5'), o, NOW)).toEqual({ ok: false, error: 'checksum', detail: 'checksum mismatch' });
    expect(parseNmea(good.slice(0, -3), o, NOW)).toMatchObject({ ok: false, error: 'checksum' });
    expect(parseNmea('$GPGGA,092314.00,4807.038*' + '00', o, NOW)).toMatchObject({ ok: false, error: 'checksum' });
    expect(parseNmea('$GPGGA,1,2*' + 'GPGGA,1,2'.split('').reduce((a, c) => a ^ c.charCodeAt(0), 0).toString(16).padStart(2, '0').toUpperCase(), o, NOW)).toMatchObject({ ok: false, error: 'decode' });
    expect(parseNmea('garbage', o, NOW)).toMatchObject({ ok: false, error: 'decode' });
  });

  it('reads every sentence of a line whose line endings the receiver dropped, and counts only the broken one', () => {
    const gga = '$GPGGA,092314.00,4807.03812,N,01131.00024,E,1,08,1.01,545.4,M,46.9,M,,*55';
    const rmc = '$GPRMC,092314.00,A,4807.03812,N,01131.00024,E,0.12,77.50,150624,,,A*66';
    const run = runDriver(nmea, {}, Buffer.from(`${gga}${rmc}\r\n$GPGGA,0923${rmc}\r\n${gga.replace('545.4', '545.5')}$GPGGA,1*00\r\n`));
    expect(flat(run)).toEqual([
      ['latitude=48.117302', 'longitude=11.5166707', 'fix_quality=1', 'satellites=8', 'hdop=1.01', 'altitude=545.4', 'fix_valid=true', 'latitude=48.117302', 'longitude=11.5166707', 'speed_kn=0.12', 'course=77.5'],
      ['fix_valid=true', 'latitude=48.117302', 'longitude=11.5166707', 'speed_kn=0.12', 'course=77.5'],
    ]);
    expect(run.failures.map((f) => f.detail)).toEqual(['sentence without checksum', 'checksum mismatch', 'checksum mismatch']);
  });

  it('accepts sentences without checksum when it is optional, and ignores unlisted and proprietary types', () => {
    const opt = options.parse({ checksum: 'optional', sentences: ['VTG'] });
    expect(parseNmea('$GPVTG,10.0,T,,M,1.0,N,1.9,K', opt, NOW)).toMatchObject({ ok: true, readings: [{ metric: 'course', value: 10 }, {}, {}] });
    expect(parseNmea('$GPGGA,,,,,,0,00,99.99,,,,,,*48', opt, NOW)).toEqual({ ok: true, readings: [] });
    expect(parseNmea('$PUBX,00*33', opt, NOW)).toEqual({ ok: true, readings: [] });
  });

  it('skips blank lines between sentences quietly, counting no failure', () => {
    const o = options.parse({});
    expect(parseNmea('', o, NOW)).toEqual({ ok: true, readings: [] });
    expect(parseNmea(' \r', o, NOW)).toEqual({ ok: true, readings: [] });
    expect(parseNmea('GPGGA,1*00', o, NOW)).toMatchObject({ ok: false, error: 'decode' });
  });

  it('converts coordinates and times exactly, and refuses malformed ones', () => {
    expect(coordinate('01131.000', 'W')).toBeCloseTo(-11.516667, 6);
    expect(coordinate('4807.038', 'X')).toBeUndefined();
    expect(coordinate('48x7', 'N')).toBeUndefined();
    expect(fixTime('235959.99', '311299', NOW)).toBe(Date.UTC(1999, 11, 31, 23, 59, 59, 990));
    expect(fixTime('', '311299', NOW)).toBeUndefined();
  });

  it('writes a command sentence with its checksum and CRLF', async () => {
    expect(nmeaCommandLine('PMTK220,1000')).toBe('$PMTK220,1000*1F\r\n');
    expect(nmeaCommandLine('$PMTK220,1000*1F')).toBe('$PMTK220,1000*1F\r\n');
    const writes: Buffer[] = [];
    const inst = nmea.create(o, stubContext(writes));
    expect(await inst.command!(Buffer.from('a\nb'))).toMatchObject({ ok: false });
    expect(await inst.command!(Buffer.from('PMTK220,1000'))).toEqual({ ok: true, value: '$PMTK220,1000*1F' });
    expect(writes.map(String)).toEqual(['$PMTK220,1000*1F\r\n']);
  });
});
