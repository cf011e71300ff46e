/**
 * `outpost check` on a TLS listener whose files can be read but not used together: start-up
 * refuses them (exit 2), so check must too, at the line of the listener's cert.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-tls-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function check(cert: string, key: string, ca?: string): Promise<{ code: number; out: string; err: string }> {
  const file = join(tmp, 'outpost.yaml');
  writeFileSync(file, ['listeners:', '  - type: mqtts', '    port: 8883', `    cert: ${cert}`, `    key: ${key}`, ...(ca !== undefined ? [`    ca: ${ca}`] : []), ''].join('\n'));
  return runCliCaptured(['check', file]);
}

describe('outpost check with a TLS listener', () => {
  it('reports a key that does not belong to the certificate at the cert line and exits 2', async () => {
    const certs = testCerts();
    const result = await check(certs.server.crt, certs.client.key);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toMatch(/outpost\.yaml:4:11 listeners\[0\]\.cert: .*server\.crt and key .*client\.key cannot be used \(.*key values mismatch.*\); check that both are PEM files and the key belongs to the certificate\n$/);
  });

  it('reports a certificate file that is not PEM and exits 2', async () => {
    const junk = join(tmp, 'junk.crt');
    writeFileSync(junk, 'this is not a certificate\n');
    const result = await check(junk, testCerts().server.key);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/outpost\.yaml:4:11 listeners\[0\]\.cert: .*junk\.crt and key .* cannot be used/);
  });

  it('reports a ca that holds no certificate (every client certificate would be refused) at its line and exits 2', async () => {
    const certs = testCerts();
    const result = await check(certs.server.crt, certs.server.key, certs.server.key);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${join(tmp, 'outpost.yaml')}:6:9 listeners[0].ca: ${certs.server.key} holds no PEM certificate (client certificates are checked against it); give the CA certificate that signs them\n`);
    expect(await check(certs.server.crt, certs.server.key, certs.ca.crt)).toMatchObject({ code: 0 });
  });

  it('passes a matching certificate and key, given relative to the config file', async () => {
    const certs = testCerts();
    copyFileSync(certs.server.crt, join(tmp, 'server.crt'));
    copyFileSync(certs.server.key, join(tmp, 'server.key'));
    const result = await check('server.crt', 'server.key');
    expect(result).toEqual({ code: 0, out: `${join(tmp, 'outpost.yaml')}: ok\n`, err: '' });
  });
});
