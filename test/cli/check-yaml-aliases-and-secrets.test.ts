/**
 * A password that starts with a YAML indicator ("*", "!", "|", "@") is no plain value: the
 * yaml package's messages quoted it ("Unresolved alias …: hunter2"), so `outpost check` and a
 * reload's journal line showed it. And an alias without its anchor in a device map (`port:
 * *usb0`) was thrown from the loader: `outpost check` and `outpost run` died with a stack
 * trace and exit code 1, which systemd restarts every 5 s for ever.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-alias-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}

describe('outpost check on YAML indicators', () => {
  it.each([
    ['*hunter2', 'a value that starts with "*" is a YAML alias (not repeated here); put quotes around the value'],
    ['!hunter2', 'a value that starts with "!" is a YAML tag, and outpost resolves none (no !secret or !env; not repeated here); write the value itself, in quotes if it starts with "!"'],
    ['|hunter2', "invalid YAML in the value of password (not repeated here); write it as password: 'the value' (a ' in it written twice)"],
    ['@hunter2', "invalid YAML in the value of password (not repeated here); write it as password: 'the value' (a ' in it written twice)"],
  ])('does not repeat the password %s and says to quote it', async (password, sentence) => {
    const file = write('bridge.yaml', `bridges:\n  - name: cloud\n    url: mqtts://cloud.example:8883\n    username: site-17\n    password: ${password}\n    rules: [{ pattern: "sensors/#" }]\n`);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).not.toContain('hunter2');
    expect(result.err).toContain(sentence);
    expect(result.err).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:1[56] `));
  });

  it('reports an alias without its anchor in a device map at its line instead of crashing', async () => {
    write('devices.yaml', 'devices:\n  - id: boiler\n    port: *usb0\n    driver: line-json\n');
    const file = write('outpost.yaml', 'serial:\n  include: [devices.yaml]\n');
    const result = await runCliCaptured(['check', file]);
    expect(result).toEqual({
      code: 2,
      out: '',
      err: `${join(tmp, 'devices.yaml')}:3:11 devices[0].port: *usb0 is a YAML alias, and no anchor &usb0 comes before it; put quotes around a value that starts with "*"\n`,
    });
  });

  it('reports an alias without its anchor in the config at its line, not at 1:1', async () => {
    const file = write('level.yaml', 'log:\n  level: *debug\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:2:10 log.level: *debug is a YAML alias, and no anchor &debug comes before it; put quotes around a value that starts with "*"\n`);
  });
});
