/**
 * `outpost check` and `outpost run` on a bridge whose TLS files can be read but not used: a
 * client key of another certificate, a ca without any certificate. Each connection attempt
 * failed on them (a TLS error at every reconnect, or every cloud certificate refused), found
 * only at run time; now the config is refused at the line of the key that names the file.
 * Certificates come from openssl (test/helpers/certs.ts).
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-bridge-tls-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = join(tmp, 'outpost.yaml');

/** A config with one bridge to a cloud nobody listens on, with these TLS keys (lines 5 on). */
function writeConfig(tls: Record<string, string>): void {
  writeFileSync(file, [
    'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
    `store: { dir: ${join(tmp, 'data')} }`,
    'bridges:',
    '  - name: cloud',
    ...Object.entries(tls).map(([k, v]) => `    ${k}: ${v}`),
    '    url: mqtts://127.0.0.1:1',
    '    rules: [{ pattern: "sensors/#" }]',
    '',
  ].join('\n'));
}

const cli = runCliCaptured;

describe('outpost check with a bridge client certificate', () => {
  it('reports a key that does not belong to the certificate at the cert line, with what to do, and exits 2', async () => {
    const certs = testCerts();
    writeConfig({ ca: certs.ca.crt, cert: certs.client.crt, key: certs.server.key });
    const result = await cli(['check', file]);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:11 bridges\\[0\\]\\.cert: .*client\\.crt and key .*server\\.key cannot be used together \\(.*key values mismatch.*\\); check that both are PEM files and the key belongs to the client certificate\\n$`),
    );
  });

  it('reports a ca that holds no certificate (every cloud certificate would be refused) at its line and exits 2', async () => {
    const certs = testCerts();
    writeConfig({ ca: certs.client.key, cert: certs.client.crt, key: certs.client.key });
    const result = await cli(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:5:9 bridges[0].ca: ${certs.client.key} holds no PEM certificate (the cloud broker's certificate is checked against it); give the CA certificate that signs the cloud broker's\n`);
  });

  it('reports a cert without its key and exits 2', async () => {
    writeConfig({ cert: testCerts().client.crt });
    const result = await cli(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`${file}:5:11 bridges[0].cert: is set without key; mutual TLS needs both: set key too or remove cert\n`);
  });

  it('passes the matching pair and CA, given relative to the config file', async () => {
    const certs = testCerts();
    for (const f of ['ca.crt', 'client.crt', 'client.key']) copyFileSync(join(certs.dir, f), join(tmp, f));
    writeConfig({ ca: 'ca.crt', cert: 'client.crt', key: 'client.key' });
    expect(await cli(['check', file])).toEqual({ code: 0, out: `${file}: ok\n`, err: '' });
  });
});

describe('outpost run with a bridge key of another certificate', () => {
  it('stops start-up with exit 2 and the same sentence instead of retrying the cloud for ever', async () => {
    const certs = testCerts();
    writeConfig({ ca: certs.ca.crt, cert: certs.client.crt, key: certs.server.key });
    // Before, the gateway started and kept reconnecting: give it 5 s, not the test's 20.
    const result = await Promise.race([cli(['run', '--config', file]), new Promise<{ code: string; err: string }>((r) => setTimeout(() => r({ code: 'still running after 5 s', err: '' }), 5000))]);
    expect(result.code).toBe(2);
    expect(result.err).toContain('bridges[0].cert: ');
    expect(result.err).toContain('cannot be used together');
  });
});
