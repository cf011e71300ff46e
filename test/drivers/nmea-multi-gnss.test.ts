/**
 * A multi-constellation receiver sends one GSA per system each epoch, each listing only that
 * system's satellites. satellites_used is the sum over the systems, as GGA's satellite count is,
 * not the count of whichever system came last.
 */
import { describe, expect, it } from 'vitest';
import { nmea, nmeaChecksum } from '../../drivers/nmea/index.js';
import { runDriver } from '../helpers/driver-run.js';

const sentence = (body: string) => `$${body}*${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
const epoch = (...bodies: string[]) => bodies.map(sentence).join('');

/** The satellites_used values of a run, in order. */
function used(bytes: string): number[] {
  const run = runDriver(nmea, {}, Buffer.from(bytes), 17);
  expect(run.failures).toEqual([]);
  return run.readings.flat().filter((r) => r.metric === 'satellites_used').map((r) => r.value as number);
}

const GGA = 'GNGGA,092314.00,4807.03812,N,01131.00024,E,1,14,0.81,545.4,M,46.9,M,,';
const GSV = 'GPGSV,1,1,01,05,45,070,34,1';

describe('nmea satellites_used of a multi-constellation receiver', () => {
  it('sums the GSA of each system ID (NMEA 4.10, $GNGSA per system) once every system has been seen', () => {
    const one = epoch(GGA, 'GNGSA,A,3,05,13,15,18,20,21,24,29,,,,,1.36,0.81,1.09,1', 'GNGSA,A,3,65,71,72,,,,,,,,,,1.36,0.81,1.09,2', 'GNGSA,A,3,02,11,30,,,,,,,,,,1.36,0.81,1.09,3', GSV);
    expect(used(one + one)).toEqual([8, 11, 14, 14, 14, 14]);
  });

  it('tells the systems of $GNGSA without system ID (NMEA 4.0, the u-blox M8 default) by their satellite numbers', () => {
    const one = epoch(GGA, 'GNGSA,A,3,05,13,15,18,20,21,24,29,46,,,,1.36,0.81,1.09', 'GNGSA,A,3,65,71,72,80,81,,,,,,,,1.36,0.81,1.09', GSV);
    expect(used(one + one)).toEqual([9, 14, 14, 14]);
  });

  it('sums $GPGSA and $GLGSA of one receiver, and keeps a single-system receiver as it was', () => {
    expect(used(epoch('GPGSA,A,3,05,13,15,18,20,,,,,,,,1.9,1.0,1.5', 'GLGSA,A,3,65,71,72,,,,,,,,,,1.9,1.0,1.5', 'GPGSA,A,3,05,13,15,18,,,,,,,,,1.9,1.0,1.5'))).toEqual([5, 8, 7]);
    expect(used(epoch('GPGSA,A,3,05,13,15,18,20,21,24,29,,,,,1.86,1.01,1.56', 'GPGSA,A,3,05,13,15,,,,,,,,,,1.86,1.01,1.56'))).toEqual([8, 3]);
  });

  it('drops to 0 when the fix is lost, every system reporting none', () => {
    const fix = epoch('GNGSA,A,3,05,13,15,18,,,,,,,,,1.9,1.0,1.5', 'GNGSA,A,3,65,71,,,,,,,,,,,1.9,1.0,1.5');
    const lost = epoch('GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99', 'GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99');
    expect(used(fix + lost + fix)).toEqual([4, 6, 0, 0, 4, 6]);
  });
});
