/**
 * The `crl` of an mTLS listener (mqtts, wss): client certificates it lists are refused and
 * counted as revoked; a CRL that cannot be used (one of another CA) refuses every client
 * certificate, which is the operator's to fix, so it gets an error line naming the setting;
 * a file that is no CRL stops the start with one sentence naming the key, and on a reload
 * keeps the CRL in force.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig, TlsListenerConfig } from '../../src/config/schema.js';
import { TlsListener, type TlsRefusal } from '../../src/broker/tls-listener.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { testCerts, type CertFiles } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';
import { RevokingCa } from '../helpers/revoking-ca.js';

const certs = testCerts();
const tmp = mkdtempSync(join(tmpdir(), 'outpost-tls-crl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ca = new RevokingCa();
const lost = ca.issueClient('lost');
const kept = ca.issueClient('kept');
ca.revoke(lost);
const crl = join(tmp, 'devices.crl');
ca.writeCrl(crl);

function listenerConfig(type: 'mqtts' | 'wss', crlFile: string): TlsListenerConfig {
  const yaml = `listeners:\n  - { type: ${type}, host: 127.0.0.1, port: 0, cert: ${certs.server.crt}, key: ${certs.server.key}, ca: ${ca.ca.crt}, crl: ${crlFile}, require_certificate: true }\n`;
  return parseConfigText(yaml, 't.yaml').listeners[0] as TlsListenerConfig;
}

let harness: ListenerHarness<TlsListener | WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

/** Connects with MQTT.js: 'connected', or how it ended (a TLS 1.3 client sees the refusal as a close after its handshake). */
function attempt(url: string, client: CertFiles): Promise<string> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { ca: certs.pem(certs.ca.crt), cert: certs.pem(client.crt), key: certs.pem(client.key), reconnectPeriod: 0, connectTimeout: 3000 });
    c.once('connect', () => (resolve('connected'), c.end(true)));
    c.once('error', (err: Error & { code?: string | number }) => (resolve(String(err.code ?? err.message)), c.end(true)));
    c.once('close', () => (resolve('closed'), c.end(true)));
  });
}

describe('A TLS listener with a crl', () => {
  it('refuses a revoked client certificate over wss too, and admits one the crl does not list', async () => {
    const refused: TlsRefusal[] = [];
    const l = listenerConfig('wss', crl) as Extract<ListenerConfig, { type: 'wss' }>;
    const h = (harness = await startListener((broker, log) => new WsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096, onTlsRefused: (r) => refused.push(r) })));
    expect(await attempt(`wss://127.0.0.1:${h.port}/mqtt`, kept)).toBe('connected');
    expect(await attempt(`wss://127.0.0.1:${h.port}/mqtt`, lost)).not.toBe('connected');
    expect(refused).toEqual(['client-certificate-revoked']);
    expect(await h.waitLog('client certificate revoked (crl)')).toMatchObject({ level: 40, remoteAddress: '127.0.0.1', reason: 'CERT_REVOKED' });
  });

  it('refuses every client certificate with a crl of another CA, with an error line naming the setting', async () => {
    const other = new RevokingCa('another CA');
    const foreign = join(tmp, 'foreign.crl');
    other.writeCrl(foreign);
    const refused: TlsRefusal[] = [];
    const h = (harness = await startListener((broker, log) => new TlsListener(listenerConfig('mqtts', foreign), 'listeners[3]', broker, log, { handshakeTimeoutMs: 2000, onTlsRefused: (r) => refused.push(r) })));
    expect(await attempt(`mqtts://127.0.0.1:${h.port}`, kept)).not.toBe('connected');
    expect(refused).toEqual(['crl']);
    const line = await h.waitLog('client certificates cannot be checked against the crl (past its next update, or none of their ca in it): they are refused; put a current crl of each ca in the file and reload (systemctl reload outpost)');
    expect(line).toMatchObject({ level: 50, crl: foreign, setting: 'listeners[3].crl', reason: 'UNABLE_TO_GET_CRL' });
  });

  it('does not start with a crl file that holds no CRL, saying which key and what to give', async () => {
    const notCrl = join(tmp, 'not-a-crl.pem');
    copyFileSync(ca.ca.crt, notCrl);
    const listener = new TlsListener(listenerConfig('mqtts', notCrl), 'listeners[1]', { handle: () => undefined }, (await import('pino')).default({ level: 'silent' }), { handshakeTimeoutMs: 2000 });
    await expect(listener.start()).rejects.toThrow(`listeners[1].crl: ${notCrl} holds no PEM CRL (-----BEGIN X509 CRL-----); give the PEM CRL published by the CA of ca (openssl ca -gencrl)`);
    const broken = join(tmp, 'broken.crl');
    writeFileSync(broken, '-----BEGIN X509 CRL-----\nbm90IGEgY3Js\n-----END X509 CRL-----\n');
    const second = new TlsListener(listenerConfig('mqtts', broken), 'listeners[1]', { handle: () => undefined }, (await import('pino')).default({ level: 'silent' }), { handshakeTimeoutMs: 2000 });
    await expect(second.start()).rejects.toThrow(new RegExp(`^listeners\\[1\\]\\.crl: ${broken} cannot be used as a CRL \\(.+\\); give the PEM CRL`));
  });

  it('keeps the crl in force when the file is replaced by one that cannot be used', async () => {
    const live = join(tmp, 'live.crl');
    copyFileSync(crl, live);
    const h = (harness = await startListener((broker, log) => new TlsListener(listenerConfig('mqtts', live), 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, watchIntervalMs: 60_000 })));
    writeFileSync(live, 'half written');
    expect((h.listener as TlsListener).reloadTls()).toBe('failed');
    expect(await h.waitLog('tls files changed but cannot be used yet; keeping the previous certificate')).toMatchObject({ err: expect.stringContaining('listeners[0].crl') });
    expect(await attempt(`mqtts://127.0.0.1:${h.port}`, lost)).not.toBe('connected');
    expect(await attempt(`mqtts://127.0.0.1:${h.port}`, kept)).toBe('connected');
  });
});
