/**
 * A WebSocket client that floods pings without reading the pongs is cut once 60 pongs to it
 * are unsent (ws's own guard, maxPendingAutoPongs, did the same without a word): now with a
 * warn line naming its address and a count (the gateway adds it to
 * outpost_protocol_violations_total{outcome="websocket-ping-flood"}). A client that reads
 * its pongs may go on pinging.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig } from '../../src/config/schema.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';
import { floodPingsUntilClosed } from '../helpers/ws-raw.js';

let harness: ListenerHarness<WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

const FLOOD_LINE = 'websocket cut: it floods pings without reading the pongs';

async function start(floods: { n: number }) {
  const l = parseConfigText('listeners:\n  - { type: ws, host: 127.0.0.1, port: 0 }\n', 't.yaml').listeners[0] as Extract<ListenerConfig, { type: 'ws' }>;
  return (harness = await startListener((broker, log) => new WsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096, onPingFlood: () => void floods.n++ })));
}

describe('A WebSocket client flooding pings', () => {
  it('is cut with one warn line naming its address, and counted once', async () => {
    const floods = { n: 0 };
    const h = await start(floods);
    const s = net.connect(h.port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((resolve) => s.once('connect', resolve));
    s.write(`GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`);
    await new Promise((resolve) => s.once('data', resolve));
    s.pause(); // reads nothing from here on: the pongs pile up once the socket buffers are full
    expect(await floodPingsUntilClosed(s)).toBe(true);
    const line = await h.waitLog(FLOOD_LINE);
    expect(line).toMatchObject({ level: 40, remoteAddress: '127.0.0.1', unsentPongs: 60 });
    expect(h.logs.filter((l) => l.msg === FLOOD_LINE)).toHaveLength(1);
    expect(floods.n).toBe(1);
  });

  it('is answered pong for ping while it reads them, 500 pings in bursts', async () => {
    const floods = { n: 0 };
    const h = await start(floods);
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/mqtt`, 'mqtt');
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let pongs = 0;
    ws.on('pong', () => pongs++);
    // In bursts of 20 (a burst of more than 60 in one read counts as unsent pongs, as in ws).
    for (let burst = 1; burst <= 25; burst++) {
      for (let i = 0; i < 20; i++) ws.ping(Buffer.from(String(i)));
      await expect.poll(() => pongs, { timeout: 5000 }).toBe(burst * 20);
    }
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(floods.n).toBe(0);
    ws.close();
  });
});
