/**
 * What the WebSocket listener answers to HTTP that is not an MQTT upgrade: a WebSocket upgrade
 * on another path (a client set up for mosquitto, which takes any path, on `/`) gets 404 naming
 * the path to use, and a log line with the setting to change; it got a bare 400 and no line.
 * A plain HTTP request gets 426 with the Upgrade header RFC 9110 §15.5.22 requires of a 426.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig } from '../../src/config/schema.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';

const certs = testCerts();

let harness: ListenerHarness<WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start() {
  const l = parseConfigText('listeners:\n  - { type: ws, host: 127.0.0.1, port: 0 }\n', 't.yaml').listeners[0] as Extract<ListenerConfig, { type: 'ws' }>;
  // One log line per refusal (no per-address interval), so each case has its own.
  harness = await startListener((broker, log) => new WsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096, warnIntervalMs: 1 }));
  return harness;
}

/** A WebSocket upgrade by hand on `path`; resolves with the whole answer once the server closes. */
function upgrade(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`),
    );
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve(text));
  });
}

describe('The WebSocket listener, to HTTP that is not an MQTT upgrade on its path,', () => {
  it('answers an upgrade on another path with 404 naming its path, logs it with the setting, and still serves its own path', async () => {
    const h = await start();
    const answer = await upgrade(h.port, '/');
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    expect(answer).toMatch(/MQTT over WebSocket is on \/mqtt\n$/);
    const line = await h.waitLog('websocket upgrade on another path than /mqtt refused (HTTP 404)');
    expect(line).toMatchObject({ level: 40, path: '/', setting: 'listeners[0].path', remoteAddress: '127.0.0.1' });
    const c = await mqtt.connectAsync(`ws://127.0.0.1:${h.port}/mqtt?client=1`, { reconnectPeriod: 0 });
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('answers a plain HTTP request with 426 and the Upgrade header (RFC 9110 §15.5.22)', async () => {
    const h = await start();
    const res = await fetch(`http://127.0.0.1:${h.port}/mqtt`);
    expect(res.status).toBe(426);
    expect(res.headers.get('upgrade')).toBe('websocket');
  });
});

describe('The WebSocket listener, to bytes that are not HTTP,', () => {
  it('answers 400 and logs what they look like: TLS from an mqtts:// client, MQTT from an mqtt:// client', async () => {
    const h = await start();
    await expect(mqtt.connectAsync(`mqtts://127.0.0.1:${h.port}`, { reconnectPeriod: 0, connectTimeout: 3000, rejectUnauthorized: false })).rejects.toThrow();
    const tlsLine = await h.waitLog('tls on a plain websocket port (wss:// or mqtts:// meant?)');
    expect(tlsLine).toMatchObject({ level: 40, remoteAddress: '127.0.0.1' });
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${h.port}`, { reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow();
    await h.waitLog('mqtt without websocket on a websocket port (mqtt:// meant?)');
  });

  it('still answers a stalled request with 408 and logs it', async () => {
    const l = parseConfigText('listeners:\n  - { type: ws, host: 127.0.0.1, port: 0 }\n', 't.yaml').listeners[0] as Extract<ListenerConfig, { type: 'ws' }>;
    const h = (harness = await startListener((broker, log) => new WsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 300, maxPayload: 4096 })));
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(h.port, '127.0.0.1', () => s.write('GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
    });
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    await h.waitLog('http upgrade request timed out');
  });
});

describe('The wss listener, to a TLS handshake that stalls,', () => {
  it('logs it as a TLS timeout, not as a bad HTTP request, and writes no HTTP into it', async () => {
    const l = parseConfigText(`listeners:\n  - { type: wss, host: 127.0.0.1, port: 0, cert: ${certs.server.crt}, key: ${certs.server.key} }\n`, 't.yaml').listeners[0] as Extract<ListenerConfig, { type: 'wss' }>;
    const h = (harness = await startListener((broker, log) => new WsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 300, maxPayload: 4096, warnIntervalMs: 1 })));
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(h.port, '127.0.0.1', () => s.write(Buffer.from('16030100c8010000c40303', 'hex'))); // a ClientHello cut short
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
    });
    expect(answer).toBe('');
    await h.waitLog('tls handshake timed out');
    expect(h.logs.filter((x) => x.msg === 'bad http request')).toEqual([]);
  });
});
