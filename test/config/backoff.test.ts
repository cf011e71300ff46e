/**
 * bridges[].backoff and serial.reopen: base greater than cap, both written, is refused (it was
 * clamped silently); a lone key that lies beyond the other's default moves that default along.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { runCliCaptured } from '../helpers/cli-run.js';
import { configProblems } from '../helpers/config-problems.js';

const bridge = (backoff: string) => `bridges:\n  - name: cloud\n    url: mqtts://cloud.example:8883\n    rules: [{ pattern: "sensors/#" }]\n${backoff}`;
const bridgeBackoff = (backoff: string) => parseConfigText(bridge(backoff), 'outpost.yaml').bridges[0]!.backoff;

describe('reconnect backoff in config', () => {
  it('refuses bridges[].backoff with base greater than cap, at the line of base, saying what to change', () => {
    expect(configProblems(bridge('    backoff:\n      base: 90s\n      cap: 30s\n'), 'outpost.yaml')).toEqual([
      'outpost.yaml:6:13 bridges[0].backoff.base: is 90s, longer than cap (30s): the first delay cannot exceed the longest; lower base to at most 30s or raise cap',
    ]);
  });

  it('refuses serial.reopen with base greater than cap the same way', () => {
    expect(configProblems('serial:\n  reopen: { base: 1m, cap: 10s }\n', 'outpost.yaml')).toEqual([
      'outpost.yaml:2:19 serial.reopen.base: is 1m, longer than cap (10s): the first delay cannot exceed the longest; lower base to at most 10s or raise cap',
    ]);
  });

  it('takes a lone cap below the default base as the base too (quick retries), silently', () => {
    expect(bridgeBackoff('    backoff: { cap: 500ms }\n')).toEqual({ base: 500, cap: 500 });
    expect(parseConfigText('serial:\n  reopen: { cap: 200ms }\n', 'outpost.yaml').serial.reopen).toEqual({ base: 200, cap: 200 });
  });

  it('takes a lone base above the default cap as the cap too (slow retries), silently', () => {
    expect(bridgeBackoff('    backoff: { base: 2m }\n')).toEqual({ base: 120_000, cap: 120_000 });
  });

  it('keeps the defaults and equal or ordered values as written', () => {
    expect(bridgeBackoff('')).toEqual({ base: 1000, cap: 60_000 });
    expect(bridgeBackoff('    backoff: { cap: 5s }\n')).toEqual({ base: 1000, cap: 5000 });
    expect(bridgeBackoff('    backoff: { base: 2s, cap: 2s }\n')).toEqual({ base: 2000, cap: 2000 });
    expect(parseConfigText('serial: {}\n', 'outpost.yaml').serial.reopen).toEqual({ base: 1000, cap: 30_000 });
  });
});

describe('outpost check with base greater than cap', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-backoff-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('exits 2 with the sentence naming file, line and key', async () => {
    const file = join(tmp, 'outpost.yaml');
    writeFileSync(file, bridge('    backoff: { base: 10s, cap: 1s }\n'));
    const { code, out, err } = await runCliCaptured(['check', file]);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toBe(`${file}:5:22 bridges[0].backoff.base: is 10s, longer than cap (1s): the first delay cannot exceed the longest; lower base to at most 1s or raise cap\n`);
  });
});
