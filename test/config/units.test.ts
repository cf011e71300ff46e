import { describe, expect, it } from 'vitest';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [10, 10_000],
    [1.5, 1500],
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['30', 30_000],
    [' 10 s ', 10_000],
    [4_294_967_295, 4_294_967_295_000],
  ] as const)('reads %j as %d milliseconds', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([['lots'], ['10x'], ['-5s'], [-1], ['10 minutes'], ['1e3s'], ['0.5ms'], [Number.NaN], [Infinity], ['']] as const)(
    'rejects %j',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );
});

describe('parseSize', () => {
  it.each([
    [0, 0],
    [1024, 1024],
    ['512B', 512],
    ['64KB', 64_000],
    ['64kb', 64_000],
    ['64KiB', 65_536],
    ['1MB', 1_000_000],
    ['1MiB', 1_048_576],
    ['1.5KiB', 1536],
    ['2GiB', 2_147_483_648],
    ['1TB', 1e12],
    ['100', 100],
  ] as const)('reads %j as %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([['lots'], ['1K'], ['1.5B'], [-1], [0.5], ['MiB'], ['1 MiBs'], ['']] as const)('rejects %j', (input) => {
    expect(parseSize(input)).toBeUndefined();
  });
});

describe('formatting for messages', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [90_000, '90s'],
    [300_000, '5m'],
    [604_800_000, '7d'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    [0, '0B'],
    [64, '64B'],
    [1000, '1000B'],
    [1_048_576, '1MiB'],
    [268_435_455, '268435455B'],
  ])('writes %d bytes as %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
    expect(parseSize(text)).toBe(bytes);
  });
});
