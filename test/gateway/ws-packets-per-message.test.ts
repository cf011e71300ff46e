/**
 * One WebSocket message may carry several MQTT packets [MQTT-6.0.0-2]: a TCP-to-WebSocket
 * proxy frames whatever one read returned. With a small broker.max_packet_size the ws
 * listener took that limit as its largest message, so a message of several packets, each
 * within the limit, closed the connection with 1009 (the broker still refuses any one packet
 * above the limit).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { silentLog } from '../helpers/broker-harness.js';
import { freePort } from '../helpers/free-port.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-ws-packets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONNECT = Buffer.from([0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 0x77, 0x73]);
/** A QoS 0 PUBLISH to `t/n` with a 100-byte payload. */
function publish(n: number): Buffer {
  const topic = Buffer.from(`t/${n}`);
  const payload = Buffer.alloc(100, 0x61);
  return Buffer.concat([Buffer.from([0x30, 2 + topic.length + payload.length, 0x00, topic.length]), topic, payload]);
}

describe('A WebSocket message of several MQTT packets', () => {
  it('is taken packet by packet when each is within max_packet_size, however large the message', async () => {
    const [plain, ws] = [await freePort(), await freePort()];
    const text = [
      'listeners:',
      `  - { type: mqtt, port: ${plain} }`,
      `  - { type: ws, port: ${ws} }`,
      'broker: { max_packet_size: 256B }',
      `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
    ].join('\n');
    const g = new Gateway(parseConfigText(text, 'g.yaml'), { log: silentLog });
    await g.start(new AbortController().signal);
    try {
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${plain}`, { reconnectPeriod: 0 });
      const got: string[] = [];
      sub.on('message', (t) => got.push(t));
      await sub.subscribeAsync('t/#');
      const client = new WebSocket(`ws://127.0.0.1:${ws}/mqtt`, ['mqtt']);
      let closed: number | undefined;
      client.on('close', (code) => (closed = code));
      await new Promise((resolve, reject) => (client.once('open', resolve), client.once('error', reject)));
      // CONNECT and ten PUBLISHes (1.1 KB) in one binary frame.
      client.send(Buffer.concat([CONNECT, ...Array.from({ length: 10 }, (_, i) => publish(i))]));
      await expect.poll(() => got.length, { timeout: 3000 }).toBe(10);
      expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `t/${i}`));
      expect(closed).toBeUndefined();
      client.close();
      await sub.endAsync();
    } finally {
      await g.stop();
    }
  });
});
