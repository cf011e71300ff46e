/**
 * Connection limits hold on every listener type (mqtt, mqtts, ws, wss): the broker checks
 * them for whatever stream a listener hands it.
 */
import tls from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLog } from '../helpers/broker-harness.js';
import { testCerts } from '../helpers/certs.js';
import { within } from '../helpers/gateway-fixture.js';

const certs = testCerts();
let gw: Gateway;
const urls: Record<string, string> = {};

beforeAll(async () => {
  const tls = `cert: ${certs.server.crt}, key: ${certs.server.key}`;
  const config = parseConfigText([
    'listeners:',
    '  - { type: mqtt, host: 127.0.0.1, port: 0 }',
    `  - { type: mqtts, host: 127.0.0.1, port: 0, ${tls} }`,
    '  - { type: ws, host: 127.0.0.1, port: 0 }',
    `  - { type: wss, host: 127.0.0.1, port: 0, ${tls} }`,
    'broker: { max_connections_per_address: 1 }',
    'metrics: { enabled: false }',
  ].join('\n'), 'limits.yaml');
  gw = new Gateway(config, { log: silentLog });
  await gw.start(new AbortController().signal);
  for (const a of gw.addresses) urls[a.type] = `${a.type}://127.0.0.1:${a.port}${a.type.startsWith('ws') ? '/mqtt' : ''}`;
});
afterAll(async () => {
  await gw.stop();
});

/** 'connected' or 'refused' (closed without CONNACK). */
function attempt(url: string, clientId: string): Promise<{ result: 'connected' | 'refused'; client: mqtt.MqttClient }> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { clientId, reconnectPeriod: 0, connectTimeout: 3000, ca: certs.pem(certs.ca.crt) });
    client.once('connect', () => resolve({ result: 'connected', client }));
    client.once('close', () => resolve({ result: 'refused', client }));
    client.once('error', () => undefined);
  });
}

describe('max_connections_per_address', () => {
  it.each(['mqtt', 'mqtts', 'ws', 'wss'])('refuses a second connection from the same address on %s, and admits one again after the first left', async (type) => {
    const before = gw.broker.metrics.limited.get('max-connections-per-address') ?? 0;
    const first = await within(attempt(urls[type]!, `${type}-1`), 5000, 'the first connection');
    expect(first.result).toBe('connected');
    const second = await within(attempt(urls[type]!, `${type}-2`), 5000, 'the second connection');
    expect(second.result).toBe('refused');
    second.client.end(true);
    expect(gw.broker.metrics.limited.get('max-connections-per-address')).toBe(before + 1);
    await first.client.endAsync();
    await expect.poll(() => gw.broker.connectionCount, { timeout: 3000 }).toBe(0);
    const third = await within(attempt(urls[type]!, `${type}-3`), 5000, 'the connection after');
    expect(third.result).toBe('connected');
    await third.client.endAsync();
    await expect.poll(() => gw.broker.connectionCount, { timeout: 3000 }).toBe(0);
  });

  it.each(['mqtts', 'wss'])('on %s refuses the second connection before its TLS handshake, so a flood costs no handshakes', async (type) => {
    const first = await within(attempt(urls[type]!, `${type}-h1`), 5000, 'the first connection');
    expect(first.result).toBe('connected');
    const port = Number(new URL(urls[type]!).port);
    const outcome = await within(
      new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: certs.pem(certs.ca.crt), servername: 'localhost' }, () => {
          resolve('handshake completed');
          s.destroy();
        });
        s.on('error', () => resolve('closed before the handshake'));
        s.on('close', () => resolve('closed before the handshake'));
      }),
      5000,
      'the raw TLS attempt',
    );
    expect(outcome).toBe('closed before the handshake');
    await first.client.endAsync();
    await expect.poll(() => gw.broker.connectionCount, { timeout: 3000 }).toBe(0);
  });
});
