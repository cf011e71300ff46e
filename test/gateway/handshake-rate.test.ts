/**
 * The connect rate on TLS and WebSocket listeners is charged when the TCP connection
 * arrives, before a handshake is spent on it, and only once per connection.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLog } from '../helpers/broker-harness.js';
import { testCerts } from '../helpers/certs.js';
import { within } from '../helpers/gateway-fixture.js';

const certs = testCerts();
let gw: Gateway | undefined;

/** A gateway with one listener of this type (each test gets fresh buckets). */
async function start(type: 'mqtts' | 'wss'): Promise<{ gw: Gateway; port: number }> {
  const config = parseConfigText([
    'listeners:',
    `  - { type: ${type}, host: 127.0.0.1, port: 0, cert: ${certs.server.crt}, key: ${certs.server.key} }`,
    'broker: { connect_rate: 0.01, connect_burst: 2 }',
    'metrics: { enabled: false }',
  ].join('\n'), 'rate.yaml');
  gw = new Gateway(config, { log: silentLog });
  await gw.start(new AbortController().signal);
  return { gw, port: gw.addresses[0]!.port };
}
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

/** Milliseconds until the server closed a TCP connection that sends nothing (capped at ms). */
function closedAfter(port: number, localAddress: string, ms = 1000): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => undefined);
    const t = setTimeout(() => {
      s.destroy();
      resolve(ms);
    }, ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve(performance.now() - t0);
    });
  });
}

describe('connect_rate on TLS listeners', () => {
  it.each(['mqtts', 'wss'] as const)('closes a flood from one address on %s before any handshake, and charges a passing client once', async (type) => {
    const { gw, port } = await start(type);
    // The burst of 2 lets two connections from 127.0.0.3 wait in their handshake; the rest are cut at once.
    const times = await Promise.all(Array.from({ length: 10 }, () => closedAfter(port, '127.0.0.3')));
    const cut = times.filter((t) => t < 500).length;
    expect(cut).toBe(8);
    expect(gw.broker.metrics.limited.get('connect-rate')).toBe(8);
    // 127.0.0.1 has its own bucket; its TLS client passes the gate and is not charged again by the broker.
    const url = type === 'mqtts' ? `mqtts://127.0.0.1:${port}` : `wss://127.0.0.1:${port}/mqtt`;
    const opts = { reconnectPeriod: 0, ca: certs.pem(certs.ca.crt) };
    const a = await within(mqtt.connectAsync(url, { ...opts, clientId: `${type}-a` }), 5000, 'the first client');
    const b = await within(mqtt.connectAsync(url, { ...opts, clientId: `${type}-b` }), 5000, 'the second client (burst 2)');
    expect(a.connected && b.connected).toBe(true);
    await a.endAsync();
    await b.endAsync();
  });
});
