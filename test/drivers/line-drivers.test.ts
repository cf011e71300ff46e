import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lineJson } from '../../drivers/line-json/index.js';
import { lineKv } from '../../drivers/line-kv/index.js';
import { regex } from '../../drivers/regex/index.js';
import { flat, runDriver, stubContext } from '../helpers/driver-run.js';

const sample = (path: string) => readFileSync(new URL(`../../drivers/${path}`, import.meta.url));

describe('line-json driver', () => {
  it('turns every numeric and boolean field of the captured sample into a metric, in any chunking', () => {
    for (const chunk of [1, 3, 7, 64, 4096]) {
      const run = runDriver(lineJson, {}, sample('line-json/sample.jsonl'), chunk);
      expect(flat(run)).toEqual([
        ['temp=215', 'hum=41.5', 'heater=true'],
        ['temp=216', 'hum=41.4', 'heater=true'],
        ['temp=216', 'hum=41.2', 'heater=false', 'env.pressure=1013.2'],
      ]);
      expect(run.failures).toEqual([]);
    }
  });

  it('publishes strings on request and takes the time from a timestamp field', () => {
    const run = runDriver(lineJson, { strings: true, timestamp_field: 't', separator: '_' }, Buffer.from('{"t":1718443394,"a":{"b":"x"}}\n'));
    expect(run.readings[0]).toEqual([{ metric: 'a_b', value: 'x', ts: 1_718_443_394_000 }]);
  });

  it('counts a line that is not a JSON object as a decode failure and goes on', () => {
    const run = runDriver(lineJson, {}, Buffer.from('{"a":1\n[1,2]\n\x00\xff\n{"a":2}\n'));
    expect(run.failures.map((f) => f.detail)).toEqual(['not JSON', 'not a JSON object', 'not JSON']);
    expect(flat(run)).toEqual([['a=2']]);
  });

  it('counts a line whose key has bytes that are not UTF-8 as a decode failure instead of inventing a metric', () => {
    const run = runDriver(lineJson, { strings: true }, Buffer.concat([Buffer.from('{"te'), Buffer.from([0xff, 0xfe]), Buffer.from('mp":1,"v":2}\n{"u":"21'), Buffer.from([0xb0]), Buffer.from('C","t":3}\n{"ok\uFFFD":4}\n')]));
    expect(run.failures.map((f) => f.detail)).toEqual(['a key is not valid UTF-8 (line noise?)']);
    // A Latin-1 "°" in a string value does not cost the line its numbers; a real U+FFFD in a key is a key.
    expect(flat(run)).toEqual([['u=21\uFFFDC', 't=3'], ['ok\uFFFD=4']]);
  });

  it('skips blank lines quietly, counting no failure', () => {
    const run = runDriver(lineJson, {}, Buffer.from('{"a":1}\n\n\r\n  \n{"a":2}\n'));
    expect(run.failures).toEqual([]);
    expect(flat(run).filter((r) => r.length > 0)).toEqual([['a=1'], ['a=2']]);
  });

  it('drops a line longer than max_line and resyncs on the next', () => {
    const run = runDriver(lineJson, { max_line: 16 }, Buffer.from(`{"a":"${'x'.repeat(100)}"}\n{"b":1}\n`), 5);
    expect(flat(run)).toEqual([['b=1']]);
    expect(run.discards.overlong).toBe(109);
  });

  it('writes a command as one line with the configured ending', async () => {
    const writes: Buffer[] = [];
    const inst = lineJson.create(lineJson.options.parse({ line_ending: 'crlf' }), stubContext(writes));
    expect(await inst.command!(Buffer.from('{"set":1}\n'))).toEqual({ ok: true });
    expect(await inst.command!(Buffer.from('a\nb'))).toEqual({ ok: false, detail: 'a command must be one line' });
    expect(writes.map((w) => w.toString())).toEqual(['{"set":1}\r\n']);
  });
});

describe('line-kv driver', () => {
  it('reads the pairs of the captured Arduino sample, numbers and on/off, skipping text values', () => {
    const run = runDriver(lineKv, {}, sample('line-kv/sample.txt'), 5);
    expect(flat(run)).toEqual([
      ['temp=21.5', 'hum=40.2', 'relay=true'],
      ['temp=21.56', 'hum=40.1', 'relay=true'],
      ['temp=21.62', 'hum=40', 'relay=false'],
    ]);
    expect(run.failures.map((f) => f.detail)).toEqual(['no key=value pair']); // "boot ok"
  });

  it('counts a line whose key has bytes that are not UTF-8 as a decode failure instead of inventing a metric', () => {
    const run = runDriver(lineKv, {}, Buffer.concat([Buffer.from('te'), Buffer.from([0xff]), Buffer.from('mp=21.5 hum=40\nt=1 unit='), Buffer.from([0xb0]), Buffer.from('C\n')]));
    expect(run.failures.map((f) => f.detail)).toEqual(['a key is not valid UTF-8 (line noise?)']);
    expect(flat(run)).toEqual([['t=1']]);
  });

  it('keeps text values with strings: true and accepts ":" as the assignment', () => {
    const run = runDriver(lineKv, { assign: ':', strings: true }, Buffer.from('door: open; t:1e2\n'));
    expect(flat(run)).toEqual([['door=open', 't=100']]);
  });
});

describe('regex driver', () => {
  const pattern = 'T:(?<temp>-?\\d+\\.\\d)C H:(?<hum>\\d+)%';

  it('reads the named groups of the captured DHT22 sample and counts the lines that do not match', () => {
    const run = runDriver(regex, { pattern, line_ending: 'crlf' }, sample('regex/sample.txt'), 2);
    expect(flat(run)).toEqual([['temp=21.5', 'hum=40'], ['temp=21.6', 'hum=41'], ['temp=-3.2', 'hum=88']]);
    expect(run.failures).toHaveLength(2);
  });

  it('skips unmatched lines quietly with unmatched: ignore', () => {
    const run = runDriver(regex, { pattern, unmatched: 'ignore' }, sample('regex/sample.txt'));
    expect(run.failures).toEqual([]);
    expect(run.readings.filter((r) => r.length === 0)).toHaveLength(2);
  });

  it('matches a line that makes a nested quantifier backtrack exponentially in milliseconds, not half a minute', () => {
    // (\d+)+ against 30 digits and an x: about 2^30 backtracking steps (30 s here) without the guard.
    const t0 = performance.now();
    const run = runDriver(regex, { pattern: '^(?<n>(\\d+)+)$' }, Buffer.from(`${'1'.repeat(30)}x\n42\n`));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(run.failures.map((f) => f.detail)).toEqual(['line does not match the pattern']);
    expect(flat(run)).toEqual([['n=42']]);
  });

  it('rejects a pattern that does not compile or has no named group, naming the key', () => {
    const bad = regex.options.safeParse({ pattern: '(?<t>\\d+' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['pattern']);
    expect(bad.error!.issues[0]!.message).toMatch(/^not a valid regular expression/);
    const unnamed = regex.options.safeParse({ pattern: '(\\d+)' });
    expect(unnamed.error!.issues[0]!.message).toMatch(/named group/);
  });
});
