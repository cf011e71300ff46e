/**
 * A receiver without a fix says so (GGA quality 0, RMC status V, VTG mode N), and some fill the
 * position anyway: an MTK3339 (Adafruit Ultimate GPS) sends zeros until its first fix. No
 * position, altitude, speed or course comes from such a sentence: a tracker would draw the
 * vehicle at 0°, 0° (and stamp it 1999-12-04 from the receiver's unset clock).
 */
import { describe, expect, it } from 'vitest';
import { nmea, nmeaChecksum } from '../../drivers/nmea/index.js';
import { flat, runDriver } from '../helpers/driver-run.js';

const sentence = (body: string) => `$${body}*${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
const run = (...bodies: string[]) => runDriver(nmea, {}, Buffer.from(bodies.map(sentence).join('')), 11);

describe('nmea sentences that say there is no fix', () => {
  it('give no position, altitude, speed or course from an MTK3339 before its first fix, only the fix state', () => {
    const r = run(
      'GPGGA,235947.000,0000.0000,N,00000.0000,E,0,00,0.0,0.0,M,0.0,M,,0000',
      'GPRMC,235947.000,V,0000.0000,N,00000.0000,E,,,041299,,',
      'GPVTG,0.00,T,,M,0.00,N,0.00,K,N',
    );
    expect(r.failures).toEqual([]);
    expect(flat(r)).toEqual([['fix_quality=0', 'satellites=0', 'hdop=0'], ['fix_valid=false'], []]);
    expect(r.readings[1]![0]!.ts).toBeUndefined(); // the arrival time, not the receiver's unset clock (1999)
  });

  it('give no position from an RMC whose mode says not valid, even with status A', () => {
    expect(flat(run('GNRMC,092314.00,A,4807.03812,N,01131.00024,E,0.12,77.50,150624,,,N'))).toEqual([['fix_valid=false']]);
  });

  it('still give everything once the receiver has a fix', () => {
    const r = run(
      'GPGGA,092314.000,4807.0381,N,01131.0002,E,1,08,1.01,545.4,M,46.9,M,,0000',
      'GPRMC,092314.000,A,4807.0381,N,01131.0002,E,0.12,77.50,150624,,,A',
      'GPVTG,77.50,T,,M,0.12,N,0.22,K,A',
    );
    expect(flat(r)).toEqual([
      ['latitude=48.1173017', 'longitude=11.51667', 'fix_quality=1', 'satellites=8', 'hdop=1.01', 'altitude=545.4'],
      ['fix_valid=true', 'latitude=48.1173017', 'longitude=11.51667', 'speed_kn=0.12', 'course=77.5'],
      ['course=77.5', 'speed_kn=0.12', 'speed_kmh=0.22'],
    ]);
    expect(r.readings[1]![0]!.ts).toBe(Date.UTC(2024, 5, 15, 9, 23, 14));
  });
});
