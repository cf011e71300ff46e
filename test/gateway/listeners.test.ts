import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';
import { testCerts } from '../helpers/certs.js';
import { silentLog } from '../helpers/broker-harness.js';

const certs = testCerts();
const dir = mkdtempSync(join(tmpdir(), 'outpost-listeners-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gateway(listenersYaml: string[]): Gateway {
  const text = ['listeners:', ...listenersYaml.map((l) => `  - ${l}`), `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`].join('\n');
  return new Gateway(parseConfigText(text, 'g.yaml'), { log: silentLog });
}

describe('gateway listeners', () => {
  it('starts one listener per entry and reports each bound address with its kind', async () => {
    const tlsKeys = `cert: ${certs.server.crt}, key: ${certs.server.key}`;
    const g = gateway([
      '{ type: mqtt, port: 0 }',
      `{ type: mqtts, port: 0, ${tlsKeys} }`,
      '{ type: ws, port: 0 }',
      `{ type: wss, port: 0, path: /mqtt, ${tlsKeys} }`,
    ]);
    await g.start(new AbortController().signal);
    try {
      const a = g.addresses;
      expect(a.map((l) => l.type)).toEqual(['mqtt', 'mqtts', 'ws', 'wss']);
      for (const l of a) expect(l.port).toBeGreaterThan(0);
      const urls = a.map((l) => `${l.type}://127.0.0.1:${l.port}${l.type.startsWith('ws') ? '/mqtt' : ''}`);
      const clients = await Promise.all(urls.map((url) => mqtt.connectAsync(url, { ca: certs.pem(certs.ca.crt), reconnectPeriod: 0 })));
      expect(clients.every((c) => c.connected)).toBe(true);
      await Promise.all(clients.map((c) => c.endAsync()));
    } finally {
      await g.stop();
    }
  });

  it('refuses a browser page whose Origin is not in allowed_origins and counts it in /metrics (outpost_websocket_origins_refused_total)', async () => {
    const g = gateway(['{ type: ws, port: 0, allowed_origins: ["https://dash.example"] }']);
    await g.start(new AbortController().signal);
    try {
      const port = g.addresses[0]!.port;
      const opened = (origin: string) => new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, ['mqtt'], { origin });
        ws.on('open', () => (resolve('open'), ws.close()));
        ws.on('error', (err) => resolve(err.message));
      });
      expect(await opened('https://evil.example')).toBe('Unexpected server response: 403');
      expect(await opened('https://dash.example')).toBe('open');
      expect(g.broker.metrics.originsRefused).toBe(1);
      const text = renderMetrics({ broker: g.broker, bridges: [] }, { now: () => 0, eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true });
      expect(text).toMatch(/^outpost_websocket_origins_refused_total 1$/m);
    } finally {
      await g.stop();
    }
  });

  it('stops start-up with one sentence naming the key and file when a certificate cannot be read', async () => {
    const g = gateway([`{ type: mqtts, port: 0, cert: ${join(dir, 'missing.crt')}, key: ${certs.server.key} }`]);
    await expect(g.start(new AbortController().signal)).rejects.toThrow(`listeners[0].cert: cannot read ${join(dir, 'missing.crt')} (ENOENT); fix the path or its permissions`);
    await g.stop();
  });
});
