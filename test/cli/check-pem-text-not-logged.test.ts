/**
 * A private key must not reach the terminal or the journal through a config error. A key
 * pasted as the value of `key:` was taken for a file name and printed whole in "cannot read
 * …"; a key file named as the config was quoted for 60 characters, which for an EC key is
 * half of the secret.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-pem-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The base64 lines of a PEM file: the key material itself. */
function body(pem: string): string[] {
  return pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
}

describe('outpost check with PEM text where a file is expected', () => {
  it('refuses a private key pasted as a bridge key without repeating it', async () => {
    const certs = testCerts();
    const key = readFileSync(certs.client.key, 'utf8');
    const file = join(tmp, 'bridge.yaml');
    writeFileSync(file, [
      'bridges:',
      '  - name: cloud',
      '    url: mqtts://cloud.example:8883',
      `    cert: ${certs.client.crt}`,
      '    key: |',
      ...key.trimEnd().split('\n').map((l) => `      ${l}`),
      '    rules: [{ pattern: "sensors/#" }]',
      '',
    ].join('\n'));
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:5:10 bridges[0].key: holds PEM text, not the path of a PEM file; put it in a file (a key readable by the outpost user only) and give that path\n`);
  });

  it('refuses a listener key given as one line of PEM text without repeating it', async () => {
    const certs = testCerts();
    const key = readFileSync(certs.server.key, 'utf8');
    const file = join(tmp, 'listener.yaml');
    writeFileSync(file, `listeners:\n  - type: mqtts\n    port: 8883\n    cert: ${certs.server.crt}\n    key: ${JSON.stringify(key)}\n`);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    for (const line of body(key)) expect(result.err).not.toContain(line.slice(0, 16));
    expect(result.err).toContain('listeners[0].key: holds PEM text, not the path of a PEM file');
  });

  it('names a key file given as the config by its PEM header alone', async () => {
    const certs = testCerts();
    const key = readFileSync(certs.client.key, 'utf8');
    const result = await runCliCaptured(['check', certs.client.key]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${certs.client.key}:1:1 top level: expected a map of keys, got ${JSON.stringify(key.split('\n')[0])}… (${key.trimEnd().replace(/\n/g, ' ').length} characters)\n`);
    for (const line of body(key)) expect(result.err).not.toContain(line.slice(0, 8));
  });
});
