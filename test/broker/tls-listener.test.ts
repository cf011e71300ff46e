import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { TlsListenerConfig } from '../../src/config/schema.js';
import { TlsListener } from '../../src/broker/tls-listener.js';
import { CLIENT_CN, testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';

const certs = testCerts();

function tlsConfig(yaml: string): TlsListenerConfig {
  const l = parseConfigText(`listeners:\n  - { type: mqtts, host: 127.0.0.1, port: 0, ${yaml} }\n`, 't.yaml').listeners[0]!;
  if (l.type !== 'mqtts') throw new Error('not mqtts');
  return l;
}

const plainTls = () => tlsConfig(`cert: ${certs.server.crt}, key: ${certs.server.key}`);
const mutualTls = () => tlsConfig(`cert: ${certs.server.crt}, key: ${certs.server.key}, ca: ${certs.ca.crt}, require_certificate: true`);

let harness: ListenerHarness<TlsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: TlsListenerConfig, watchIntervalMs = 2000, handshakeTimeoutMs = 2000) {
  harness = await startListener((broker, log) => new TlsListener(config, 'listeners[0]', broker, log, { handshakeTimeoutMs, watchIntervalMs }));
  return harness;
}

/** Runs a mosquitto client to completion (killed by pid after ms); resolves with its exit code and output. */
function runMosquitto(cmd: string, args: string[], ms = 5000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** A raw TLS client: 'connected' when the server kept the connection past the handshake, else how it ended. */
function tlsAttempt(port: number, client?: { crt: string; key: string }): Promise<string> {
  return new Promise((resolve) => {
    const opts = { host: '127.0.0.1', port, ca: certs.pem(certs.ca.crt), ...(client ? { cert: certs.pem(client.crt), key: certs.pem(client.key) } : {}) };
    const s = tls.connect(opts, () => setTimeout(() => (resolve('connected'), s.destroy()), 200));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.on('close', () => resolve('closed'));
  });
}

describe('mqtts listener', () => {
  it('carries MQTT.js over TLS to the same broker the plain listener serves', async () => {
    const h = await start(plainTls());
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.plainPort}`, { reconnectPeriod: 0 });
    await sub.subscribeAsync('t/tls', { qos: 1 });
    const got = new Promise<string>((resolve) => sub.on('message', (_t, p) => resolve(p.toString())));
    const pub = await mqtt.connectAsync(`mqtts://127.0.0.1:${h.port}`, { ca: certs.pem(certs.ca.crt), reconnectPeriod: 0 });
    await pub.publishAsync('t/tls', 'over tls', { qos: 1 });
    expect(await got).toBe('over tls');
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('accepts mosquitto_pub with --cafile', async () => {
    const h = await start(plainTls());
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.plainPort}`, { reconnectPeriod: 0 });
    await sub.subscribeAsync('t/mosq', { qos: 1 });
    const got = new Promise<string>((resolve) => sub.on('message', (_t, p) => resolve(p.toString())));
    const r = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(h.port), '--cafile', certs.ca.crt, '-q', '1', '-t', 't/mosq', '-m', 'from mosquitto']);
    expect(r).toEqual({ code: 0, out: '' });
    expect(await got).toBe('from mosquitto');
    await sub.endAsync();
  });

  it('with require_certificate, serves mosquitto_sub presenting a client certificate and refuses a client without one', async () => {
    const h = await start(mutualTls());
    const sub = runMosquitto('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(h.port), '--cafile', certs.ca.crt, '--cert', certs.client.crt, '--key', certs.client.key, '-t', 't/mtls', '-C', '1', '-q', '1']);
    await h.waitLog('client connected').catch(() => undefined);
    // Published until the subscriber has its subscription (then it prints one message and exits).
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.plainPort}`, { reconnectPeriod: 0 });
    const timer = setInterval(() => void pub.publishAsync('t/mtls', 'mutual', { qos: 1 }), 100);
    const r = await sub;
    clearInterval(timer);
    await pub.endAsync();
    expect(r).toEqual({ code: 0, out: 'mutual\n' });

    const anonymous = await tlsAttempt(h.port);
    expect(anonymous).not.toBe('connected');
    expect((await h.waitLog('client sent no certificate')).remoteAddress).toBe('127.0.0.1');
  });

  it('refuses a client certificate from an untrusted CA with one log line, and keeps serving others', async () => {
    const h = await start(mutualTls());
    expect(await tlsAttempt(h.port, certs.rogue)).not.toBe('connected');
    expect((await h.waitLog('client certificate refused')).reason).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const ok = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(h.port), '--cafile', certs.ca.crt, '--cert', certs.client.crt, '--key', certs.client.key, '-t', 't/x', '-m', 'yes']);
    expect(ok.code).toBe(0);
  });

  it('hands the client certificate CN to the broker as identity with use_identity_as_username', async () => {
    const config = { ...mutualTls(), use_identity_as_username: true };
    const seen: (string | undefined)[] = [];
    harness = await startListener((broker, log) => {
      const spy = { handle: (s: Parameters<typeof broker.handle>[0], peer: Parameters<typeof broker.handle>[1]) => (seen.push(peer?.identity), broker.handle(s, peer)) };
      return new TlsListener(config, 'listeners[0]', spy, log, { handshakeTimeoutMs: 2000 });
    });
    const r = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(harness.port), '--cafile', certs.ca.crt, '--cert', certs.client.crt, '--key', certs.client.key, '-t', 't/x', '-m', 'id']);
    expect(r.code).toBe(0);
    expect(seen).toEqual([CLIENT_CN]);
  });

  it('with use_identity_as_username, refuses a trusted client certificate without a CN with a log line, instead of taking the CONNECT user name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-nocn-'));
    try {
      const noCn = { crt: join(dir, 'nocn.crt'), key: join(dir, 'nocn.key') };
      execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', noCn.key, '-out', join(dir, 'nocn.csr'), '-subj', '/O=No Common Name'], { stdio: 'ignore' });
      execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'nocn.csr'), '-CA', certs.ca.crt, '-CAkey', certs.ca.key, '-CAcreateserial', '-CAserial', join(dir, 'ca.srl'), '-days', '1', '-out', noCn.crt], { stdio: 'ignore' });
      const seen: (string | undefined)[] = [];
      harness = await startListener((broker, log) => {
        const spy = { handle: (st: Parameters<typeof broker.handle>[0], peer: Parameters<typeof broker.handle>[1]) => (seen.push(peer?.identity), broker.handle(st, peer)) };
        return new TlsListener({ ...mutualTls(), use_identity_as_username: true }, 'listeners[0]', spy, log, { handshakeTimeoutMs: 2000 });
      });
      const r = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(harness.port), '--cafile', certs.ca.crt, '--cert', noCn.crt, '--key', noCn.key, '-u', 'someone', '-P', 'x', '-t', 't/x', '-m', 'no']);
      expect(r.code).not.toBe(0);
      expect(seen).toEqual([]); // never reached the broker as a client with a CONNECT user name
      await harness.waitLog('client certificate has no CN (use_identity_as_username)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cuts a TLS handshake that stalls after the connect timeout, while another client connects', async () => {
    const h = await start(plainTls(), 2000, 300);
    const stalled = net.connect(h.port, '127.0.0.1');
    const started = Date.now();
    const closed = new Promise<number>((resolve) => stalled.on('close', () => resolve(Date.now() - started)));
    const other = await mqtt.connectAsync(`mqtts://127.0.0.1:${h.port}`, { ca: certs.pem(certs.ca.crt), reconnectPeriod: 0 });
    const after = await closed;
    expect(after).toBeGreaterThanOrEqual(250);
    expect(after).toBeLessThan(2000);
    await h.waitLog('tls handshake timed out');
    expect(other.connected).toBe(true);
    await other.endAsync();
  });

  it('refuses plain MQTT on the TLS port with a log line', async () => {
    const h = await start(plainTls());
    const sock = net.connect(h.port, '127.0.0.1');
    // CONNECT, MQTT 3.1.1, client id "p"
    sock.write(Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x70]));
    sock.on('error', () => undefined);
    await new Promise((resolve) => sock.on('close', resolve));
    const line = await h.waitLog('not tls (plain tcp on a tls port?)');
    expect(line.level).toBe(40);
  });

  describe('certificate renewal', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-renew-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('uses a renewed certificate for new connections without a restart', async () => {
      const crt = join(dir, 'server.crt');
      const key = join(dir, 'server.key');
      copyFileSync(certs.expired.crt, crt);
      copyFileSync(certs.expired.key, key);
      const h = await start(tlsConfig(`cert: ${crt}, key: ${key}`), 50);
      const attempt = () =>
        new Promise<string>((resolve) => {
          const s = tls.connect({ host: '127.0.0.1', port: h.port, ca: certs.pem(certs.ca.crt) }, () => (resolve('ok'), s.end()));
          s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        });
      expect(await attempt()).toBe('CERT_HAS_EXPIRED');
      // As renewal tools do: write new files beside and rename them over the old ones.
      copyFileSync(certs.server.key, `${key}.new`);
      copyFileSync(certs.server.crt, `${crt}.new`);
      renameSync(`${key}.new`, key);
      renameSync(`${crt}.new`, crt);
      await h.waitLog('tls certificate reloaded');
      await expect.poll(attempt, { timeout: 3000, interval: 50 }).toBe('ok');
    });
  });
});
