/**
 * A WebSocket connection closed by the server side (ws terminates one that floods pings
 * without reading the pongs) while data to it was still queued: the broker sees it close,
 * publishes the Will and frees the slot at once, as on TCP. It kept the connection (and the
 * Will) until the keepalive expired, and forever with keepalive 0: the stream of the closed
 * WebSocket ended but never emitted 'close', since ending it waited for a 'finish' of the
 * destroyed socket.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { ListenerConfig } from '../../src/config/schema.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';
import { floodPingsUntilClosed, frame } from '../helpers/ws-raw.js';

let harness: ListenerHarness<WsListener> | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

// CONNECT 3.1.1, keepalive 0, client id "gone", Will "will/gone" = "x" at QoS 0.
const body = Buffer.concat([
  Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x06, 0x00, 0x00, 0x00, 0x04]), Buffer.from('gone'),
  Buffer.from([0x00, 0x09]), Buffer.from('will/gone'), Buffer.from([0x00, 0x01]), Buffer.from('x'),
]);
const CONNECT = Buffer.concat([Buffer.from([0x10, body.length]), body]);

/** A ws listener, and an MQTT client on its broker's plain port collecting the topics of the Wills published. */
async function startWithWatcher() {
  const l = parseConfigText('listeners:\n  - { type: ws, host: 127.0.0.1, port: 0 }\n', 't.yaml').listeners[0] as Extract<ListenerConfig, { type: 'ws' }>;
  const h = (harness = await startListener((broker, log) => new WsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096 })));
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.plainPort}`, { reconnectPeriod: 0 });
  const wills: string[] = [];
  watcher.on('message', (t) => wills.push(t));
  await watcher.subscribeAsync('will/#');
  return { h, watcher, wills };
}

describe('A WebSocket connection terminated with data to it still queued', () => {
  it('is seen gone at once: its Will is published and its connection freed, with keepalive 0', async () => {
    const { h, watcher, wills } = await startWithWatcher();

    const s = net.connect(h.port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((resolve) => s.once('connect', resolve));
    s.write(`GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`);
    await new Promise((resolve) => s.once('data', resolve));
    // Read nothing from here on (not even the CONNACK), and ask for pongs: once 60 are
    // unsent, ws terminates the connection (its guard against a pong flood), writes queued.
    s.pause();
    s.write(frame(0x2, CONNECT));
    await expect.poll(() => h.logs.some((x) => x.msg === 'client connected'), { timeout: 2000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(await floodPingsUntilClosed(s)).toBe(true);

    await expect.poll(() => wills, { timeout: 3000 }).toEqual(['will/gone']);
    await expect.poll(() => h.broker.metrics.connectionsCurrent, { timeout: 2000 }).toBe(1); // the watcher
    await watcher.endAsync();
  });

  it('still publishes no Will for a client that sends DISCONNECT and closes the WebSocket', async () => {
    const { h, watcher, wills } = await startWithWatcher();
    for (const protocolVersion of [4, 5] as const) {
      const c = await mqtt.connectAsync(`ws://127.0.0.1:${h.port}/mqtt`, { protocolVersion, reconnectPeriod: 0, will: { topic: 'will/polite', payload: Buffer.from('x'), qos: 0, retain: false } });
      await c.endAsync();
    }
    await expect.poll(() => h.broker.metrics.connectionsCurrent, { timeout: 2000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(wills).toEqual([]);
    await watcher.endAsync();
  });
});
