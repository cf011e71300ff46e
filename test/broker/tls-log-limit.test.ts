import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { TlsListenerConfig } from '../../src/config/schema.js';
import { TlsListener } from '../../src/broker/tls-listener.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';

const certs = testCerts();
let harness: ListenerHarness<TlsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

/** Plain bytes on the TLS port from `localAddress`; resolves when the server closed it. */
function plainAttempt(port: number, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    sock.on('connect', () => sock.write(Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x70])));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve());
  });
}

describe('TLS refusal log lines', () => {
  it('are one per source address per interval, the next one counting what was suppressed', async () => {
    const l = parseConfigText(`listeners:\n  - { type: mqtts, host: 127.0.0.1, port: 0, cert: ${certs.server.crt}, key: ${certs.server.key} }\n`, 't.yaml').listeners[0] as TlsListenerConfig;
    harness = await startListener((broker, log) => new TlsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, warnIntervalMs: 3000 }));
    const h = harness;
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) await plainAttempt(h.port, '127.0.0.1');
    await plainAttempt(h.port, '127.0.0.2');
    const lines = () => h.logs.filter((x) => x.msg === 'not tls (plain tcp on a tls port?)');
    expect(Date.now() - t0).toBeLessThan(3000); // all within one interval
    expect(lines().map((x) => x['remoteAddress'])).toEqual(['127.0.0.1', '127.0.0.2']);
    await new Promise((r) => setTimeout(r, t0 + 3100 - Date.now()));
    await plainAttempt(h.port, '127.0.0.1');
    await expect.poll(() => lines().length, { timeout: 2000 }).toBe(3);
    expect(lines()[2]!['suppressed']).toBe(19);
  });
});
