/**
 * `serial.include` slips: a file named twice made every device of it "used twice" and its
 * port "already used" by itself, at lines of the device map that were right; a wildcard
 * (`devices/*.yaml`, as other tools take it) was reported as a missing file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-include-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
writeFileSync(join(tmp, 'boiler.yaml'), 'devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }\n');

async function check(include: string): Promise<{ code: number; out: string; err: string; file: string }> {
  const file = join(tmp, 'outpost.yaml');
  writeFileSync(file, `serial:\n  include: ${include}\n`);
  return { ...(await runCliCaptured(['check', file])), file };
}

describe('outpost check on serial.include', () => {
  it('reports a device map named twice at the second entry, and nothing in the map itself', async () => {
    const r = await check('[boiler.yaml, ./boiler.yaml]');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:2:26 serial.include[1]: names ${join(tmp, 'boiler.yaml')} again (serial.include[0] does); include each file once\n`);
  });

  it('says that a wildcard is not expanded', async () => {
    const r = await check('["*.yaml"]');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${r.file}:2:13 serial.include[0]: no file is named ${join(tmp, '*.yaml')}: wildcards are not expanded; list each device map file\n`);
  });
});
