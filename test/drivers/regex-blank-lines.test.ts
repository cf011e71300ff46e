/**
 * A DHT22 sketch that prints a blank line between readings (Serial.println()), or CRLF line
 * ends read as LF with an extra "\r\n": blank lines carry nothing and are skipped quietly, as
 * the other line drivers skip them, instead of a decode failure (and a warning) each.
 */
import { describe, expect, it } from 'vitest';
import { regex } from '../../drivers/regex/index.js';
import { flat, runDriver } from '../helpers/driver-run.js';

describe('regex driver and blank lines', () => {
  it('skips blank lines without counting them, and still counts a line that does not match', () => {
    const run = runDriver(regex, { pattern: 'T:(?<temp>-?\\d+\\.\\d)C H:(?<hum>\\d+)%' }, Buffer.from('T:21.5C H:40%\r\n\r\n  \r\nT:21.6C H:41%\n\nERR sensor\n'), 5);
    expect(flat(run)).toEqual([['temp=21.5', 'hum=40'], [], [], ['temp=21.6', 'hum=41'], []]);
    expect(run.failures.map((f) => f.detail)).toEqual(['line does not match the pattern']);
  });
});
