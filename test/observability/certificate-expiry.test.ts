/**
 * Certificate expiry, as a gateway that runs for months without a reload sees it: the
 * gauge gives each certificate's notAfter as node reads it; within 14 days of it a warn line,
 * after it an error line, each at most once a day per certificate (the hourly check and
 * every bridge reconnect report it again); a CA bundle counts by its earliest certificate.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CertificateExpiry, DAY_MS, type CertificateSlot } from '../../src/observability/certificate-expiry.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';
import { BrokerMetrics } from '../../src/broker/metrics.js';
import { testCerts } from '../helpers/certs.js';
import { FakeClock } from '../helpers/fake-clock.js';

const certs = testCerts();
const validTo = (file: string) => Date.parse(new X509Certificate(readFileSync(file)).validTo);

function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
  return { log, lines };
}

const listener: CertificateSlot = { use: 'listener', owner: { type: 'mqtts', address: '0.0.0.0:8883' }, file: certs.server.crt, setting: 'listeners[1].cert' };

describe('Certificate expiry', () => {
  it('gives each certificate its notAfter on /metrics, with its use, owner and file', () => {
    const { log } = capture();
    const expiry = new CertificateExpiry({ clock: new FakeClock(Date.parse('2026-01-01T00:00:00Z')) });
    expiry.update(listener, readFileSync(certs.server.crt), log);
    expiry.update({ use: 'bridge', owner: { bridge: 'cloud' }, file: certs.client.crt, setting: 'bridges[0].cert' }, readFileSync(certs.client.crt), log);
    const text = renderMetrics(
      { broker: { metrics: new BrokerMetrics() }, bridges: [], certificateExpiry: () => expiry.samples() },
      { now: () => 0, eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true },
    );
    expect(text).toContain('# TYPE outpost_tls_certificate_expiry_timestamp_seconds gauge\n');
    expect(text).toContain(`outpost_tls_certificate_expiry_timestamp_seconds{use="listener",type="mqtts",address="0.0.0.0:8883",file="${certs.server.crt}"} ${validTo(certs.server.crt) / 1000}\n`);
    expect(text).toContain(`outpost_tls_certificate_expiry_timestamp_seconds{use="bridge",bridge="cloud",file="${certs.client.crt}"} ${validTo(certs.client.crt) / 1000}\n`);
  });

  it('warns within 14 days of expiry once a day, then says so as an error once it has expired', () => {
    const { log, lines } = capture();
    const end = validTo(certs.server.crt);
    const clock = new FakeClock(end - 20 * DAY_MS);
    const expiry = new CertificateExpiry({ clock, checkIntervalMs: 3_600_000 });
    expiry.update(listener, readFileSync(certs.server.crt), log);
    expiry.start();
    expect(lines).toEqual([]);

    clock.advance(6 * DAY_MS - 3_600_000); // 14 days and an hour left: nothing yet
    expect(lines).toEqual([]);
    clock.advance(3_600_000); // the hourly check at 14 days left
    const soon = lines.filter((l) => l.msg === 'listener certificate expires soon; renew it');
    expect(soon).toHaveLength(1);
    expect(soon[0]).toMatchObject({ level: 40, cert: certs.server.crt, setting: 'listeners[1].cert', validTo: new Date(end).toISOString(), daysLeft: 14 });
    // Reported again (a reload, a reconnect) and checked hourly: no second line the same day.
    expiry.update(listener, readFileSync(certs.server.crt), log);
    clock.advance(DAY_MS - 2 * 3_600_000);
    expect(lines.filter((l) => l.msg === 'listener certificate expires soon; renew it')).toHaveLength(1);
    clock.advance(3 * 3_600_000);
    expect(lines.filter((l) => l.msg === 'listener certificate expires soon; renew it')).toHaveLength(2);

    clock.advance(end - clock.now() + 3_600_000); // past notAfter, and the next hourly check
    const expired = lines.filter((l) => l.msg === 'listener certificate has expired: clients refuse it; renew it');
    expect(expired).toEqual([expect.objectContaining({ level: 50, setting: 'listeners[1].cert', validTo: new Date(end).toISOString() })]);
    expiry.stop();
    expect(clock.pending).toBe(0);
  });

  it('counts a CA bundle by its earliest certificate and only warns of an expired one in it', () => {
    const { log, lines } = capture();
    const bundle = Buffer.concat([readFileSync(certs.ca.crt), readFileSync(certs.expired.crt)]);
    const expiry = new CertificateExpiry({ clock: new FakeClock(Date.parse('2026-01-01T00:00:00Z')) });
    expiry.update({ use: 'bridge-ca', owner: { bridge: 'cloud' }, file: '/etc/outpost/tls/cloud-ca.crt', setting: 'bridges[0].ca' }, bundle, log);
    expect(expiry.samples()).toEqual([{ labels: { use: 'bridge-ca', bridge: 'cloud', file: '/etc/outpost/tls/cloud-ca.crt' }, value: Date.parse('2020-02-01T00:00:00Z') / 1000 }]);
    // A bundle may keep an old CA on purpose while devices move to a new one: a warning, not an error.
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: "bridge ca certificate has expired: the cloud broker's certificate no longer verifies; renew it", setting: 'bridges[0].ca' })]);
  });

  it('forgets the certificates of an owner that is gone', () => {
    const { log } = capture();
    const bridges = new Set(['cloud', 'backup']);
    const expiry = new CertificateExpiry({ live: (s) => s.owner['bridge'] === undefined || bridges.has(s.owner['bridge']) });
    for (const bridge of bridges) expiry.update({ use: 'bridge', owner: { bridge }, file: certs.client.crt, setting: 'bridges[0].cert' }, readFileSync(certs.client.crt), log);
    expiry.update(listener, readFileSync(certs.server.crt), log);
    bridges.delete('backup');
    expect(expiry.samples().map((s) => s.labels?.['bridge'] ?? s.labels?.['use'])).toEqual(['cloud', 'listener']);
    expiry.forget({ bridge: 'cloud' });
    expect(expiry.samples().map((s) => s.labels?.['use'])).toEqual(['listener']);
  });
});
