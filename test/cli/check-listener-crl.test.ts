/**
 * `outpost check` on a listener's `crl`: a file that is no CRL, one that cannot be read and
 * a crl without require_certificate are reported at the crl line (exit 2), as start-up
 * refuses them; a good one, given relative to the config file, passes.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { runCliCaptured } from '../helpers/cli-run.js';
import { RevokingCa } from '../helpers/revoking-ca.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-crl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const certs = testCerts();
const file = join(tmp, 'outpost.yaml');

async function check(crl: string, mtls = true): Promise<{ code: number; out: string; err: string }> {
  writeFileSync(file, ['listeners:', '  - type: mqtts', '    port: 8883', `    cert: ${certs.server.crt}`, `    key: ${certs.server.key}`, `    ca: ${certs.ca.crt}`, `    require_certificate: ${mtls}`, `    crl: ${crl}`, ''].join('\n'));
  return runCliCaptured(['check', file]);
}

describe('outpost check with a listener crl', () => {
  it('reports a file that holds no CRL at the crl line and exits 2', async () => {
    const result = await check(certs.ca.crt);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:8:10 listeners[0].crl: ${certs.ca.crt} holds no PEM CRL (-----BEGIN X509 CRL-----); give the PEM CRL published by the CA of ca (openssl ca -gencrl)\n`);
  });

  it('reports a crl that cannot be read, and one without require_certificate', async () => {
    const missing = await check(join(tmp, 'missing.crl'));
    expect(missing.code).toBe(2);
    expect(missing.err).toBe(`${file}:8:10 listeners[0].crl: cannot read ${join(tmp, 'missing.crl')} (ENOENT); fix the path or its permissions\n`);
    const ca = new RevokingCa();
    ca.writeCrl(join(tmp, 'good.crl'));
    const plain = await check(join(tmp, 'good.crl'), false);
    expect(plain.code).toBe(2);
    expect(plain.err).toMatch(/listeners\[0\]\.crl: needs require_certificate: true \(a crl revokes client certificates\)\n$/);
  });

  it('passes a CRL given relative to the config file', async () => {
    const ca = new RevokingCa();
    ca.writeCrl(join(tmp, 'devices.crl'));
    copyFileSync(join(tmp, 'devices.crl'), join(tmp, 'relative.crl'));
    expect(await check('relative.crl')).toEqual({ code: 0, out: `${file}: ok\n`, err: '' });
  });
});
