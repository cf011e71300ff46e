/**
 * The log line of a TLS handshake the client gave up on: it names the client (its address
 * is gone from the socket by the time node reports the failure) and says which side
 * refused which certificate. An OpenSSL client (mosquitto_pub) that does not trust our
 * certificate, or finds it expired, sends an alert; a node client resets the connection.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig, TlsListenerConfig } from '../../src/config/schema.js';
import { TlsListener } from '../../src/broker/tls-listener.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness, type LogLine } from '../helpers/listener-harness.js';

const certs = testCerts();

function listenerConfig(yaml: string): ListenerConfig {
  return parseConfigText(`listeners:\n  - { host: 127.0.0.1, port: 0, ${yaml} }\n`, 't.yaml').listeners[0]!;
}

let harness: ListenerHarness<TlsListener | WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function startTls(cert: { crt: string; key: string }) {
  const config = listenerConfig(`type: mqtts, cert: ${cert.crt}, key: ${cert.key}`) as TlsListenerConfig;
  harness = await startListener((broker, log) => new TlsListener(config, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, warnIntervalMs: 1 }));
  return harness;
}

/** mosquitto_pub to the TLS port with `cafile`, killed by pid after 5 s; resolves with its exit code. */
function mosquittoPub(port: number, cafile: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('mosquitto_pub', ['-h', 'localhost', '-p', String(port), '--cafile', cafile, '-t', 't', '-m', 'x'], { stdio: 'ignore' });
    const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/** A node TLS client from `localAddress` that does not trust the server (it resets, sending no alert). */
function distrustingNodeClient(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    const s = tls.connect({ socket, servername: 'localhost', ca: certs.pem(certs.otherCa.crt) }, () => resolve('connected'));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** The warn lines about clients (not the start-up one about an expired certificate of ours). */
const warnings = (h: ListenerHarness<unknown>): LogLine[] => h.logs.filter((l) => l.level === 40 && !l.msg.startsWith('listener certificate'));

describe('A failed TLS handshake log line', () => {
  it('names the client and says it refused our certificate when mosquitto_pub does not trust the CA', async () => {
    const h = await startTls(certs.server);
    expect(await mosquittoPub(h.port, certs.otherCa.crt)).not.toBe(0);
    await expect.poll(() => warnings(h).length, { timeout: 3000 }).toBe(1);
    const line = warnings(h)[0]!;
    expect(line.msg).toBe('client refused our certificate (expired, or not signed by a ca it trusts?)');
    expect(line['remoteAddress']).toBe('127.0.0.1');
    expect(line['remotePort']).toEqual(expect.any(Number));
  });

  it('does not blame a client certificate when our own certificate has expired', async () => {
    const h = await startTls(certs.expired);
    expect(await mosquittoPub(h.port, certs.ca.crt)).not.toBe(0);
    await expect.poll(() => warnings(h).length, { timeout: 3000 }).toBe(1);
    const line = warnings(h)[0]!;
    expect(line['reason']).toMatch(/CERTIFICATE_EXPIRED/);
    expect(line.msg).toBe('client refused our certificate (expired, or not signed by a ca it trusts?)');
    expect(line['remoteAddress']).toBe('127.0.0.1');
  });

  it('names each node client that resets the handshake by its own address, on mqtts and wss', async () => {
    let h: ListenerHarness<TlsListener | WsListener> = await startTls(certs.server);
    expect(await distrustingNodeClient(h.port, '127.0.0.3')).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(await distrustingNodeClient(h.port, '127.0.0.4')).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await expect.poll(() => warnings(h).map((l) => l['remoteAddress']), { timeout: 3000 }).toEqual(['127.0.0.3', '127.0.0.4']);
    expect(warnings(h)[0]!.msg).toBe('client closed during the tls handshake (does it trust our certificate?)');
    await h.stop();

    const wss = listenerConfig(`type: wss, cert: ${certs.server.crt}, key: ${certs.server.key}`) as Extract<ListenerConfig, { type: 'wss' }>;
    h = harness = await startListener((broker, log) => new WsListener(wss, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096, warnIntervalMs: 1 }));
    expect(await distrustingNodeClient(h.port, '127.0.0.5')).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await expect.poll(() => warnings(h).map((l) => l['remoteAddress']), { timeout: 3000 }).toEqual(['127.0.0.5']);
  });
});
