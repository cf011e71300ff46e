/**
 * A TLS key encrypted with a passphrase: outpost takes none, and `outpost check` passed on
 * OpenSSL's "bad decrypt", which says nothing of passphrases. Now the key's own line says it
 * is encrypted and how to store it decrypted, for a listener and for a bridge.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-encrypted-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function encrypted(key: string, name: string): string {
  const out = join(tmp, name);
  execFileSync('openssl', ['pkey', '-in', key, '-aes256', '-passout', 'pass:site-17', '-out', out]);
  return out;
}

const sentence = (key: string) => `${key} is encrypted with a passphrase, which outpost cannot take; store the key decrypted (openssl pkey -in ${key} -out NEW-FILE), readable by the outpost user only`;

describe('outpost check with an encrypted TLS key', () => {
  it('says so at the key of a listener', async () => {
    const certs = testCerts();
    const key = encrypted(certs.server.key, 'server-enc.key');
    const file = join(tmp, 'listener.yaml');
    writeFileSync(file, `listeners:\n  - type: mqtts\n    port: 8883\n    cert: ${certs.server.crt}\n    key: ${key}\n`);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:5:10 listeners[0].key: ${sentence(key)}\n`);
  });

  it('says so at the key of a bridge', async () => {
    const certs = testCerts();
    const key = encrypted(certs.client.key, 'client-enc.key');
    const file = join(tmp, 'bridge.yaml');
    writeFileSync(file, `bridges:\n  - name: cloud\n    url: mqtts://cloud.example:8883\n    ca: ${certs.ca.crt}\n    cert: ${certs.client.crt}\n    key: ${key}\n    rules: [{ pattern: "sensors/#" }]\n`);
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:6:10 bridges[0].key: ${sentence(key)}\n`);
  });
});
