/**
 * A lost field device's certificate is revoked without changing the CA: the mqtts listener
 * takes a `crl` (what `openssl ca -gencrl` writes), refuses a client certificate it lists
 * (logged with the address, counted by reason on /metrics) and admits the others; a new
 * CRL applies on SIGHUP to new connections, without a restart, while open connections keep
 * going. The real executable, mosquitto_pub and MQTT.js as the devices, openssl as the CA.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { testCerts, type CertFiles } from '../helpers/certs.js';
import { freePort } from '../helpers/free-port.js';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';
import { RevokingCa } from '../helpers/revoking-ca.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-crl-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const certs = testCerts();

/** mosquitto_pub with a client certificate, killed by pid after 5 s; its exit code and output. */
function mosquittoPub(port: number, client: CertFiles, message: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const args = ['-h', '127.0.0.1', '-p', String(port), '--cafile', certs.ca.crt, '--cert', client.crt, '--key', client.key, '-q', '1', '-t', 'devices/report', '-m', message];
    const child = spawn('mosquitto_pub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

async function metrics(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('An mqtts listener with a crl', () => {
  it('refuses a revoked device, admits the others, and takes a new crl on SIGHUP for new connections', async () => {
    const ca = new RevokingCa();
    const lost = ca.issueClient('lost-device');
    const kept = ca.issueClient('kept-device');
    ca.revoke(lost);
    const crl = join(tmp, 'devices.crl');
    ca.writeCrl(crl);

    const [port, tlsPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const { file } = await writeProcessConfig(tmp, {
      // A plain listener to watch from, and the mqtts one under test.
      listeners: [
        { type: 'mqtt', host: '127.0.0.1', port },
        { type: 'mqtts', host: '127.0.0.1', port: tlsPort, cert: certs.server.crt, key: certs.server.key, ca: ca.ca.crt, crl, require_certificate: true },
      ],
      metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    });
    const gw = await OutpostProcess.start(file);
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    try {
      const got: string[] = [];
      watcher.on('message', (_t, p) => got.push(p.toString()));
      await watcher.subscribeAsync('devices/#', { qos: 1 });

      // The revoked device is cut in the handshake; the other one publishes.
      const refused = await mosquittoPub(tlsPort, lost, 'from the lost device');
      expect(refused.code).not.toBe(0);
      expect(await mosquittoPub(tlsPort, kept, 'from the kept device')).toEqual({ code: 0, out: '' });
      await expect.poll(() => got).toEqual(['from the kept device']);

      const revokedLine = gw.logLines('client certificate revoked (crl)');
      expect(revokedLine).toHaveLength(1);
      expect(revokedLine[0]).toMatchObject({ level: 'warn', remoteAddress: '127.0.0.1', reason: 'CERT_REVOKED' });
      let text = await metrics(metricsPort);
      expect(sample(text, 'outpost_tls_refused_total', 'reason="client-certificate-revoked"')).toBe(1);
      // The expiry gauge of the listener's certificate and of its ca, as node reads them.
      const listener = `type="mqtts",address="127.0.0.1:${tlsPort}"`;
      expect(sample(text, 'outpost_tls_certificate_expiry_timestamp_seconds', `use="listener",${listener},file="${certs.server.crt}"`))
        .toBe(Date.parse(new X509Certificate(certs.pem(certs.server.crt)).validTo) / 1000);
      expect(sample(text, 'outpost_tls_certificate_expiry_timestamp_seconds', `use="listener-ca",${listener},file="${ca.ca.crt}"`))
        .toBe(Date.parse(new X509Certificate(certs.pem(ca.ca.crt)).validTo) / 1000);

      // An open connection of the kept device, made before its certificate is revoked.
      const open = await mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
        ca: certs.pem(certs.ca.crt), cert: certs.pem(kept.crt), key: certs.pem(kept.key), reconnectPeriod: 0,
      });
      try {
        // The kept device is lost too: a new CRL, then SIGHUP (systemctl reload outpost).
        ca.revoke(kept);
        ca.writeCrl(crl);
        gw.hup();
        // The listener also polls its files (every 2 s), so which of the two applied it is not asserted.
        await expect.poll(() => gw.logLines('config reloaded').length, { timeout: 5000 }).toBe(1);
        expect(gw.logLines('tls certificate reloaded')).toEqual([expect.objectContaining({ crl })]);

        const now = await mosquittoPub(tlsPort, kept, 'after the new crl');
        expect(now.code).not.toBe(0);
        text = await metrics(metricsPort);
        expect(sample(text, 'outpost_tls_refused_total', 'reason="client-certificate-revoked"')).toBe(2);
        // No restart: the connection made before the reload still carries messages.
        expect(gw.running).toBe(true);
        await open.publishAsync('devices/report', 'over the open connection', { qos: 1 });
        await expect.poll(() => got).toEqual(['from the kept device', 'over the open connection']);
      } finally {
        open.end(true);
      }
    } finally {
      await watcher.endAsync();
      expect(await gw.stop()).toBe(0);
    }
  }, 60_000);

  it('does not start with a crl file that is not a CRL, and says which key and what to give', async () => {
    const ca = new RevokingCa();
    const notCrl = join(tmp, 'copied-ca.crl');
    copyFileSync(ca.ca.crt, notCrl); // the CA certificate copied where the CRL should be
    const { file } = await writeProcessConfig(tmp, {
      listeners: [{ type: 'mqtts', host: '127.0.0.1', port: await freePort(), cert: certs.server.crt, key: certs.server.key, ca: ca.ca.crt, crl: notCrl, require_certificate: true }],
    }, 'bad-crl.yaml');
    const gw = OutpostProcess.spawn(file);
    await gw.exited;
    expect(gw.child.exitCode).toBe(2);
    expect(gw.output()).toContain(`listeners[0].crl: ${notCrl} holds no PEM CRL (-----BEGIN X509 CRL-----); give the PEM CRL published by the CA of ca (openssl ca -gencrl)`);
  }, 30_000);
});
