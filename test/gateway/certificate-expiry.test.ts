/**
 * The whole gateway reports when its certificates expire: the mqtts listener's server
 * certificate and CA, the bridge's client certificate and CA (read at each connection
 * attempt, so a cloud that cannot be reached does not hide it), on /metrics; a bridge
 * certificate that runs out in 10 days gets a warn line naming the setting. A WebSocket
 * client cut for flooding pings is counted with the protocol violations.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';
import { testCerts } from '../helpers/certs.js';
import { freePort } from '../helpers/free-port.js';
import { RevokingCa } from '../helpers/revoking-ca.js';

const certs = testCerts();
const dir = mkdtempSync(join(tmpdir(), 'outpost-cert-expiry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const validTo = (file: string) => Date.parse(new X509Certificate(certs.pem(file)).validTo) / 1000;

describe('Certificate expiry of a running gateway', () => {
  it('puts the listener and bridge certificates on /metrics and warns of a bridge certificate that expires in 10 days', async () => {
    const ca = new RevokingCa();
    const shortLived = ca.issueClient('site-17', 'site-17', 10);
    const [mqtts, ws, closed] = [await freePort(), await freePort(), await freePort()];
    const text = [
      'listeners:',
      `  - { type: mqtts, port: ${mqtts}, cert: ${certs.server.crt}, key: ${certs.server.key}, ca: ${ca.ca.crt}, require_certificate: true }`,
      `  - { type: ws, port: ${ws} }`,
      'bridges:',
      `  - { name: cloud, url: "mqtts://127.0.0.1:${closed}", ca: ${certs.ca.crt}, cert: ${shortLived.crt}, key: ${shortLived.key}, backoff: { base: 1s, cap: 1s }, rules: [{ pattern: "sensors/#" }] }`,
      `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
    ].join('\n');
    const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const g = new Gateway(parseConfigText(text, 'g.yaml'), { log });
    await g.start(new AbortController().signal);
    const metrics = () => renderMetrics(g, { now: () => Date.now(), eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true });
    const sample = (labels: string) => {
      const line = metrics().split('\n').find((l) => l.startsWith(`outpost_tls_certificate_expiry_timestamp_seconds{${labels}} `));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    try {
      const listener = `type="mqtts",address="127.0.0.1:${mqtts}"`;
      expect(sample(`use="listener",${listener},file="${certs.server.crt}"`)).toBe(validTo(certs.server.crt));
      expect(sample(`use="listener-ca",${listener},file="${ca.ca.crt}"`)).toBe(validTo(ca.ca.crt));
      await expect.poll(() => sample(`use="bridge",bridge="cloud",file="${shortLived.crt}"`), { timeout: 5000 }).toBe(validTo(shortLived.crt));
      expect(sample(`use="bridge-ca",bridge="cloud",file="${certs.ca.crt}"`)).toBe(validTo(certs.ca.crt));

      const soon = lines.filter((l) => l.msg === 'bridge client certificate expires soon; renew it');
      expect(soon).toEqual([expect.objectContaining({ level: 40, bridge: 'cloud', setting: 'bridges[0].cert', cert: shortLived.crt, daysLeft: 9 })]);
      // Reconnect attempts read the file again, the line is not repeated.
      await expect.poll(() => g.bridges[0]!.counters.connectFailures, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
      expect(lines.filter((l) => l.msg === 'bridge client certificate expires soon; renew it')).toHaveLength(1);
      expect(lines.filter((l) => l.msg.includes('listener certificate'))).toEqual([]);

      // A WebSocket client that floods pings and reads nothing.
      const s = net.connect(ws, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise((resolve) => s.once('connect', resolve));
      s.write(`GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`);
      await new Promise((resolve) => s.once('data', resolve));
      s.pause();
      const ping = Buffer.concat([Buffer.from([0x89, 0x80 | 125, 0, 0, 0, 0]), Buffer.alloc(125)]);
      s.write(Buffer.concat(Array.from({ length: 1000 }, () => ping)));
      await expect.poll(() => /^outpost_protocol_violations_total\{outcome="websocket-ping-flood"\} 1$/m.test(metrics()), { timeout: 5000 }).toBe(true);
      s.destroy();
    } finally {
      await g.stop();
    }
  }, 20_000);
});
