/**
 * A listener whose own certificate has expired (a renewal that failed) is refused by every
 * client, and the only lines were one per client saying it closed or refused our
 * certificate. Start-up, and each reload of the files, now say it once, with the date and
 * the setting, on mqtts and wss: an error line, since every client is refused until the
 * operator renews it (observability/certificate-expiry.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig, TlsListenerConfig } from '../../src/config/schema.js';
import { TlsListener } from '../../src/broker/tls-listener.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';

const certs = testCerts();
const EXPIRED = 'listener certificate has expired: clients refuse it; renew it';

function config(type: 'mqtts' | 'wss', cert: { crt: string; key: string }): ListenerConfig {
  return parseConfigText(`listeners:\n  - { type: ${type}, host: 127.0.0.1, port: 0, cert: ${cert.crt}, key: ${cert.key} }\n`, 't.yaml').listeners[0]!;
}

let harness: ListenerHarness<TlsListener | WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

describe('A TLS listener started with an expired certificate', () => {
  it('says so once at start with the date and the setting (mqtts)', async () => {
    const h = (harness = await startListener((broker, log) => new TlsListener(config('mqtts', certs.expired) as TlsListenerConfig, 'listeners[2]', broker, log, { handshakeTimeoutMs: 2000 })));
    const line = await h.waitLog(EXPIRED);
    expect(line).toMatchObject({ level: 50, cert: certs.expired.crt, setting: 'listeners[2].cert', validTo: '2020-02-01T00:00:00.000Z' });
    expect(h.logs.filter((l) => l.msg === EXPIRED)).toHaveLength(1);
  });

  it('says so on wss too, and nothing of the kind for a valid certificate', async () => {
    const wss = config('wss', certs.expired) as Extract<ListenerConfig, { type: 'wss' }>;
    let h: ListenerHarness<TlsListener | WsListener> = (harness = await startListener((broker, log) => new WsListener(wss, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096 })));
    await h.waitLog(EXPIRED);
    await h.stop();
    harness = undefined;
    h = harness = await startListener((broker, log) => new TlsListener(config('mqtts', certs.server) as TlsListenerConfig, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000 }));
    await h.waitLog('mqtts listener ready');
    expect(h.logs.filter((l) => l.msg.startsWith('listener certificate'))).toEqual([]);
  });
});
