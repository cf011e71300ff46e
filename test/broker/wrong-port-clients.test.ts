/**
 * A TLS or WebSocket client pointed at the plain mqtt port: refused on its first byte as
 * before, counted as a protocol error, and the log line says what the bytes look like, so
 * the operator knows to fix the client's port or scheme rather than hunt a broken client.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpListener } from '../../src/broker/tcp-listener.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';

const certs = testCerts();
let harness: ListenerHarness<TcpListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

/** One MQTT.js attempt that fails; resolves once it gave up. */
async function attemptOnce(url: string, extra: mqtt.IClientOptions = {}): Promise<void> {
  await expect(mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000, ...extra })).rejects.toThrow();
}

describe('A client of another listener kind on the plain mqtt port', () => {
  it('is refused with a log line saying it sent a TLS handshake (mqtts:// to the mqtt port)', async () => {
    const h = (harness = await startListener((broker, log) => new TcpListener('127.0.0.1', 0, broker, log)));
    await attemptOnce(`mqtts://127.0.0.1:${h.port}`, { ca: certs.pem(certs.ca.crt) });
    const line = await h.waitLog('first byte 0x16 is not CONNECT (a TLS handshake: a TLS client on the plain mqtt port?)');
    expect(line.level).toBe(40);
    expect(h.broker.metrics.violations.get('protocol-error')).toBe(1);
  });

  it('is refused with a log line saying it sent an HTTP request (ws:// to the mqtt port)', async () => {
    const h = (harness = await startListener((broker, log) => new TcpListener('127.0.0.1', 0, broker, log)));
    await attemptOnce(`ws://127.0.0.1:${h.port}/mqtt`);
    await h.waitLog('first byte 0x47 is not CONNECT (an HTTP request: a WebSocket client or a browser on the plain mqtt port?)');
  });

  it('keeps the plain line for other bytes', async () => {
    const h = (harness = await startListener((broker, log) => new TcpListener('127.0.0.1', 0, broker, log)));
    const net = await import('node:net');
    const s = net.connect(h.port, '127.0.0.1', () => s.write(Buffer.from([0x82, 0x00])));
    s.on('error', () => undefined);
    await h.waitLog('first byte 0x82 is not CONNECT');
    s.destroy();
  });
});
