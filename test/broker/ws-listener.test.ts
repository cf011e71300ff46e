import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig } from '../../src/config/schema.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { testCerts } from '../helpers/certs.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';

const certs = testCerts();
const MAX = 4096;

function wsConfig(yaml: string): Extract<ListenerConfig, { type: 'ws' | 'wss' }> {
  const l = parseConfigText(`listeners:\n  - { host: 127.0.0.1, port: 0, ${yaml} }\n`, 't.yaml').listeners[0]!;
  if (l.type !== 'ws' && l.type !== 'wss') throw new Error('not ws');
  return l;
}

let harness: ListenerHarness<WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(yaml = 'type: ws') {
  harness = await startListener((broker, log) => new WsListener(wsConfig(yaml), 'listeners[0]', broker, log, {
    handshakeTimeoutMs: 2000,
    maxPayload: MAX,
    onOriginRefused: () => void broker.metrics.originsRefused++,
  }));
  return harness;
}

/** A WebSocket upgrade by hand on a raw socket, as a browser sends it; resolves with the status line of the answer. */
async function upgradeWithOrigin(port: number, origin: string | undefined): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  const headers = [
    'GET /mqtt HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Protocol: mqtt',
    ...(origin === undefined ? [] : [`Origin: ${origin}`]),
  ];
  socket.write(`${headers.join('\r\n')}\r\n\r\n`);
  let text = '';
  const status = await new Promise<string>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end >= 0) resolve(text.slice(0, end));
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
  socket.destroy();
  return status;
}

/** CONNECT, MQTT 3.1.1, clean session, keepalive 60, client id "w". */
const CONNECT = Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x77]);

/** A raw `ws` client speaking subprotocol mqtt; resolves once open. */
async function rawWs(port: number, protocols: string[] = ['mqtt']): Promise<{ ws: WebSocket; received: Buffer[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, protocols);
  const received: Buffer[] = [];
  ws.on('message', (data) => received.push(data as Buffer));
  ws.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return { ws, received, closed };
}

async function roundTrip(h: ListenerHarness<WsListener>, url: string, opts: mqtt.IClientOptions = {}): Promise<string> {
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.plainPort}`, { reconnectPeriod: 0 });
  await sub.subscribeAsync('t/ws', { qos: 1 });
  const got = new Promise<string>((resolve) => sub.on('message', (_t, p) => resolve(p.toString())));
  const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...opts });
  await pub.publishAsync('t/ws', `via ${url.split(':')[0]}`, { qos: 1 });
  const payload = await got;
  await Promise.all([pub.endAsync(), sub.endAsync()]);
  return payload;
}

describe('ws and wss listeners', () => {
  it('carry MQTT.js over ws:// on the configured path to the same broker', async () => {
    const h = await start('type: ws, path: /mqtt');
    expect(await roundTrip(h, `ws://127.0.0.1:${h.port}/mqtt`)).toBe('via ws');
  });

  it('carry MQTT.js over wss:// with the test CA', async () => {
    const h = await start(`type: wss, cert: ${certs.server.crt}, key: ${certs.server.key}`);
    expect(await roundTrip(h, `wss://127.0.0.1:${h.port}/mqtt`, { ca: certs.pem(certs.ca.crt) })).toBe('via wss');
  });

  it('refuses another path and a plain HTTP request', async () => {
    const h = await start();
    const other = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${h.port}/other`, ['mqtt']);
      ws.on('open', () => (resolve('open'), ws.close()));
      ws.on('error', (err) => resolve(err.message));
    });
    expect(other).toBe('Unexpected server response: 404');
    const res = await fetch(`http://127.0.0.1:${h.port}/mqtt`);
    expect(res.status).toBe(426);
  });

  it('closes a WebSocket that does not speak the mqtt subprotocol, with a log line', async () => {
    const h = await start();
    const { closed } = await rawWs(h.port, []);
    expect(await closed).toBe(1002);
    await h.waitLog('websocket without the mqtt subprotocol refused');
  });

  it('closes a connection that sends a text frame with 1003 (unsupported data), without answering it, and others carry on [MQTT-6.0.0-1]', async () => {
    const h = await start();
    const bad = await rawWs(h.port);
    bad.ws.send(CONNECT.toString('latin1'), { binary: false });
    const code = await bad.closed;
    expect(code).toBe(1003);
    expect(bad.received).toEqual([]);
    await h.waitLog('websocket text frame refused (MQTT needs binary frames)');
    const good = await rawWs(h.port);
    good.ws.send(CONNECT);
    await expect.poll(() => Buffer.concat(good.received).toString('hex'), { timeout: 2000 }).toBe('20020000');
    good.ws.close();
  });

  it('reassembles a CONNECT split over fragments and over two messages', async () => {
    const h = await start();
    const a = await rawWs(h.port);
    a.ws.send(CONNECT.subarray(0, 3), { fin: false, binary: true });
    a.ws.send(CONNECT.subarray(3, 9), { fin: false, binary: true });
    a.ws.send(CONNECT.subarray(9), { fin: true, binary: true });
    const b = await rawWs(h.port);
    b.ws.send(CONNECT.subarray(0, 7));
    setTimeout(() => b.ws.send(CONNECT.subarray(7)), 20);
    for (const c of [a, b]) {
      await expect.poll(() => Buffer.concat(c.received).toString('hex'), { timeout: 2000 }).toBe('20020000'); // CONNACK accepted
      c.ws.close();
    }
  });

  it('cuts an HTTP upgrade request that stalls before its headers end within about the connect timeout, not up to 30 s later', async () => {
    harness = await startListener((broker, log) => new WsListener(wsConfig('type: ws'), 'listeners[0]', broker, log, { handshakeTimeoutMs: 300, maxPayload: MAX }));
    const started = Date.now();
    const stalled = net.connect(harness.port, '127.0.0.1');
    stalled.on('error', () => undefined);
    stalled.resume(); // reads the 408, so 'close' follows the server's end
    stalled.write('GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // and nothing more
    const closedAfter = await new Promise<number>((resolve) => {
      const t = setTimeout(() => resolve(-1), 5000);
      stalled.on('close', () => (clearTimeout(t), resolve(Date.now() - started)));
    });
    stalled.destroy();
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(2500);
  });

  it('closes a connection that sends a message above the limit (1009), and others carry on', async () => {
    const h = await start();
    const other = await mqtt.connectAsync(`ws://127.0.0.1:${h.port}/mqtt`, { reconnectPeriod: 0 });
    const big = await rawWs(h.port);
    big.ws.send(CONNECT);
    big.ws.send(Buffer.alloc(MAX + 1));
    expect(await big.closed).toBe(1009);
    await h.waitLog('websocket message too large');
    await other.publishAsync('still/here', 'ok', { qos: 1 });
    expect(other.connected).toBe(true);
    await other.endAsync();
  });

  it('refuses a browser page from another site with HTTP 403 before the upgrade under the default, counted and logged', async () => {
    const h = await start();
    expect(await upgradeWithOrigin(h.port, 'https://evil.example')).toBe('HTTP/1.1 403 Forbidden');
    expect(await upgradeWithOrigin(h.port, 'null')).toBe('HTTP/1.1 403 Forbidden');
    expect(h.broker.metrics.originsRefused).toBe(2);
    const line = await h.waitLog('websocket from a web origin not in allowed_origins refused (HTTP 403)');
    expect(line).toMatchObject({ origin: 'https://evil.example', setting: 'listeners[0].allowed_origins' });
    // Rate-limited per address: the second refusal within the interval wrote no line.
    expect(h.logs.filter((l) => l.msg === line.msg)).toHaveLength(1);
    expect(await upgradeWithOrigin(h.port, undefined)).toBe('HTTP/1.1 101 Switching Protocols');
  });

  it('admits MQTT.js over ws without an Origin header (a Node client, not a browser) under the default', async () => {
    const h = await start();
    expect(await roundTrip(h, `ws://127.0.0.1:${h.port}/mqtt`)).toBe('via ws');
    expect(h.broker.metrics.originsRefused).toBe(0);
  });

  it('admits MQTT.js sending an allowed Origin, compared without case and the default port, and refuses another', async () => {
    const h = await start('type: ws, allowed_origins: ["https://dash.example:8443", "http://kiosk.lan"]');
    expect(await roundTrip(h, `ws://127.0.0.1:${h.port}/mqtt`, { wsOptions: { origin: 'https://DASH.example:8443' } })).toBe('via ws');
    expect(await upgradeWithOrigin(h.port, 'http://kiosk.lan:80')).toBe('HTTP/1.1 101 Switching Protocols');
    expect(await upgradeWithOrigin(h.port, 'https://dash.example')).toBe('HTTP/1.1 403 Forbidden');
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${h.port}/mqtt`, ['mqtt'], { origin: 'http://kiosk.lan:8080' });
      ws.on('open', () => (resolve('open'), ws.close()));
      ws.on('error', (err) => resolve(err.message));
    });
    expect(refused).toBe('Unexpected server response: 403');
    expect(h.broker.metrics.originsRefused).toBe(2);
  });

  it('admits any origin with allowed_origins: ["*"], on wss too', async () => {
    const h = await start(`type: wss, cert: ${certs.server.crt}, key: ${certs.server.key}, allowed_origins: ["*"]`);
    expect(await roundTrip(h, `wss://127.0.0.1:${h.port}/mqtt`, { ca: certs.pem(certs.ca.crt), wsOptions: { origin: 'https://anything.example' } })).toBe('via wss');
    expect(h.broker.metrics.originsRefused).toBe(0);
  });
});
