/**
 * What the YAML parser lets through that an operator did not mean: a file saved in another
 * encoding than UTF-8, YAML tags (`!secret`, `!env`, `!!omap`) and `${NAME}` references that
 * outpost does not resolve. `outpost check` used to say "ok" and the gateway ran with a mangled unit, the word
 * after `!secret` as the password, or an `!!omap` section read as all defaults.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-encoding-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, content: string | Buffer): string {
  const file = join(tmp, name);
  writeFileSync(file, content);
  return file;
}

describe('outpost check on files the YAML parser reads without an error', () => {
  it('refuses a device map saved as Latin-1 at the byte that is not UTF-8 and exits 2', async () => {
    // "°C" in Latin-1 is the single byte 0xB0: read as UTF-8 it became "\uFFFDC".
    write('devices.yaml', Buffer.concat([
      Buffer.from('devices:\n  - id: boiler\n    port: /dev/ttyUSB0\n    driver: line-json\n    metrics:\n      temp: { unit: '),
      Buffer.from([0xb0]),
      Buffer.from('C }\n'),
    ]));
    const config = write('outpost.yaml', 'serial:\n  include: [devices.yaml]\n');
    const result = await runCliCaptured(['check', config]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${join(tmp, 'devices.yaml')}:6:21 the file is not UTF-8 text here (saved as Latin-1 or Windows-1252?); save it as UTF-8, or the text is read wrongly\n`);
  });

  it('refuses a config saved as UTF-16 with a line saying to save it as UTF-8', async () => {
    const file = write('utf16.yaml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('log:\n  level: info\n', 'utf16le')]));
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:1:1 the file is not UTF-8 text (UTF-16, as some Windows editors save, or not text at all); save it as UTF-8, or name the right file\n`);
  });

  it('says in one line that a binary file named as the config is no text, not a line per byte run', async () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 256;
    const file = write('binary.yaml', bytes);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:1:1 the file is not UTF-8 text (UTF-16, as some Windows editors save, or not text at all); save it as UTF-8, or name the right file\n`);
  });

  it('refuses a password given as !secret under its key instead of taking the word after the tag', async () => {
    const file = write('secret.yaml', [
      'bridges:',
      '  - name: cloud',
      '    url: mqtt://127.0.0.1:1883',
      '    username: site-17',
      '    password: !secret cloud_password',
      '    rules: [{ pattern: sensors/# }]',
      '',
    ].join('\n'));
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:5:15 bridges[0].password: a value that starts with "!" is a YAML tag, and outpost resolves none (no !secret or !env; not repeated here); write the value itself, in quotes if it starts with "!"\n`);
  });

  it('refuses a device port given as !env under its key, naming the tag', async () => {
    write('env-devices.yaml', 'devices:\n  - id: boiler\n    port: !env BOILER_PORT\n    driver: line-json\n');
    const config = write('env.yaml', 'serial:\n  include: [env-devices.yaml]\n');
    const result = await runCliCaptured(['check', config]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${join(tmp, 'env-devices.yaml')}:3:11 devices[0].port: YAML tag !env is not supported (the value after it would be read as plain text: outpost resolves no !secret, !env or !include); remove the tag and write the value itself, or put quotes around a value that starts with "!"\n`);
  });

  it('refuses ${NAME} as a value instead of taking those characters for the user name', async () => {
    const file = write('env.yaml', [
      'bridges:',
      '  - name: cloud',
      '    url: mqtts://cloud.example:8883',
      '    username: ${SITE_ID}',
      '    rules: [{ pattern: sensors/# }]',
      '',
    ].join('\n'));
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:4:15 bridges[0].username: \${SITE_ID} is not expanded: outpost reads no environment variables in its config; write the value itself\n`);
  });

  it('reports an !!omap section instead of reading it as an empty map of defaults', async () => {
    const file = write('omap.yaml', 'broker: !!omap [max_connections: 5]\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`${file}:1:9 broker: YAML tag !!omap is not supported`);
  });

  it('still takes a UTF-8 file with a byte order mark and the core tags such as !!str', async () => {
    const file = write('bom.yaml', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('log:\n  level: !!str info\n')]));
    const result = await runCliCaptured(['check', file]);
    expect(result).toEqual({ code: 0, out: `${file}: ok\n`, err: '' });
  });
});
