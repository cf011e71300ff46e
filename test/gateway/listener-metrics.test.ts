/**
 * /metrics counts connections per listener (type and configured address): how many
 * dashboards are on wss now, how many devices came over mTLS. The broker counted only
 * the total. Clients refused in the TLS handshake (or for their certificate) are counted by
 * reason; they were only logged, rate-limited.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';
import { testCerts } from '../helpers/certs.js';
import { silentLog } from '../helpers/broker-harness.js';
import { freePort } from '../helpers/free-port.js';

const certs = testCerts();
const dir = mkdtempSync(join(tmpdir(), 'outpost-listener-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Connection metrics per listener', () => {
  it('count the connections open now and so far on each listener, mqtt, mqtts, ws and wss, and drop back as clients leave', async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()] as const;
    const tlsKeys = `cert: ${certs.server.crt}, key: ${certs.server.key}`;
    const text = [
      'listeners:',
      `  - { type: mqtt, port: ${ports[0]} }`,
      `  - { type: mqtts, port: ${ports[1]}, ${tlsKeys} }`,
      `  - { type: ws, port: ${ports[2]} }`,
      `  - { type: wss, port: ${ports[3]}, ${tlsKeys} }`,
      `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
    ].join('\n');
    const g = new Gateway(parseConfigText(text, 'g.yaml'), { log: silentLog });
    await g.start(new AbortController().signal);
    const metrics = () => renderMetrics({ broker: g.broker, bridges: [] }, { now: () => 0, eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true });
    const sample = (name: string, type: string, port: number) => {
      const m = new RegExp(`^${name}\\{type="${type}",address="127\\.0\\.0\\.1:${port}"\\} (\\d+)$`, 'm').exec(metrics());
      return m === null ? undefined : Number(m[1]);
    };
    try {
      expect(sample('outpost_listener_connections', 'wss', ports[3])).toBe(0);
      const opts = { ca: certs.pem(certs.ca.crt), reconnectPeriod: 0 };
      const clients = await Promise.all([
        mqtt.connectAsync(`mqtt://127.0.0.1:${ports[0]}`, opts),
        mqtt.connectAsync(`mqtts://127.0.0.1:${ports[1]}`, opts),
        mqtt.connectAsync(`ws://127.0.0.1:${ports[2]}/mqtt`, opts),
        mqtt.connectAsync(`wss://127.0.0.1:${ports[3]}/mqtt`, opts),
        mqtt.connectAsync(`wss://127.0.0.1:${ports[3]}/mqtt`, opts),
      ]);
      expect(sample('outpost_listener_connections', 'mqtt', ports[0])).toBe(1);
      expect(sample('outpost_listener_connections', 'mqtts', ports[1])).toBe(1);
      expect(sample('outpost_listener_connections', 'ws', ports[2])).toBe(1);
      expect(sample('outpost_listener_connections', 'wss', ports[3])).toBe(2);
      await clients[4]!.endAsync();
      await expect.poll(() => sample('outpost_listener_connections', 'wss', ports[3])).toBe(1);
      expect(sample('outpost_listener_connections_total', 'wss', ports[3])).toBe(2);
      expect(metrics()).toMatch(/^outpost_clients_connected 4$/m);
      await Promise.all(clients.slice(0, 4).map((c) => c.endAsync()));
      await expect.poll(() => sample('outpost_listener_connections', 'mqtts', ports[1])).toBe(0);
      expect(sample('outpost_listener_connections_total', 'mqtts', ports[1])).toBe(1);
    } finally {
      await g.stop();
    }
  });

  it('count clients refused by TLS listeners, by reason: plain MQTT on the port, no or a foreign client certificate, our certificate distrusted', async () => {
    const ports = [await freePort(), await freePort()] as const;
    const mtls = `cert: ${certs.server.crt}, key: ${certs.server.key}, ca: ${certs.ca.crt}, require_certificate: true`;
    const text = [
      'listeners:',
      `  - { type: mqtts, port: ${ports[0]}, ${mtls} }`,
      `  - { type: wss, port: ${ports[1]}, ${mtls} }`,
      `store: { dir: ${JSON.stringify(join(dir, 'data2'))} }`,
    ].join('\n');
    const g = new Gateway(parseConfigText(text, 'g.yaml'), { log: silentLog });
    await g.start(new AbortController().signal);
    const refused = (reason: string) => {
      const m = new RegExp(`^outpost_tls_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(renderMetrics({ broker: g.broker, bridges: [] }, { now: () => 0, eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true }));
      return m === null ? 0 : Number(m[1]);
    };
    const ended = (s: net.Socket) => new Promise<void>((resolve) => (s.on('error', () => undefined), s.on('close', () => resolve())));
    try {
      const plain = net.connect(ports[0], '127.0.0.1', () => plain.write(Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x70])));
      await ended(plain);
      for (const port of ports) await ended(tls.connect({ host: '127.0.0.1', port, ca: certs.pem(certs.ca.crt) }).resume());
      const rogue = { ca: certs.pem(certs.ca.crt), cert: certs.pem(certs.rogue.crt), key: certs.pem(certs.rogue.key) };
      await ended(tls.connect({ host: '127.0.0.1', port: ports[1], ...rogue }).resume());
      await ended(tls.connect({ host: '127.0.0.1', port: ports[0], servername: 'localhost', ca: certs.pem(certs.otherCa.crt) }));
      await expect.poll(() => [refused('not-tls'), refused('no-client-certificate'), refused('client-certificate'), refused('client-closed')]).toEqual([1, 2, 1, 1]);
    } finally {
      await g.stop();
    }
  });
});
