/**
 * The expiry gauge follows a listener's certificate as it is replaced: after a renewal read
 * on SIGHUP (reloadTls) it gives the new notAfter, and a replacement that runs out within 14
 * days (a short-lived certificate put in by mistake) says so at once.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { TlsListenerConfig } from '../../src/config/schema.js';
import { TlsListener } from '../../src/broker/tls-listener.js';
import { CertificateExpiry } from '../../src/observability/certificate-expiry.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';
import { RevokingCa } from '../helpers/revoking-ca.js';

const certs = testCerts();
const tmp = mkdtempSync(join(tmpdir(), 'outpost-cert-expiry-reload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const notAfter = (file: string) => Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000;

let harness: ListenerHarness<TlsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

describe('The expiry gauge of a listener certificate', () => {
  it('gives the renewed certificate after a reload, and warns at once of one that expires in 10 days', async () => {
    const crt = join(tmp, 'server.crt');
    const key = join(tmp, 'server.key');
    copyFileSync(certs.server.crt, crt);
    copyFileSync(certs.server.key, key);
    const config = parseConfigText(`listeners:\n  - { type: mqtts, host: 127.0.0.1, port: 0, cert: ${crt}, key: ${key} }\n`, 't.yaml').listeners[0] as TlsListenerConfig;
    const expiry = new CertificateExpiry();
    const h = (harness = await startListener((broker, log) => new TlsListener(config, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, watchIntervalMs: 60_000, certificates: expiry })));
    const labels = { use: 'listener', type: 'mqtts', address: '127.0.0.1:0', file: crt };
    expect(expiry.samples()).toEqual([{ labels, value: notAfter(certs.server.crt) }]);

    const shortLived = new RevokingCa().issueClient('short-lived', 'localhost', 10);
    copyFileSync(shortLived.crt, crt);
    copyFileSync(shortLived.key, key);
    expect(h.listener.reloadTls()).toBe('reloaded');
    expect(expiry.samples()).toEqual([{ labels, value: notAfter(shortLived.crt) }]);
    expect(await h.waitLog('listener certificate expires soon; renew it')).toMatchObject({ level: 40, cert: crt, setting: 'listeners[0].cert', daysLeft: 9 });
  });
});
