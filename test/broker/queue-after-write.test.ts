/**
 * Messages queued because one tick's bytes went over the socket high-water mark must move
 * on even when the kernel takes the whole write (no 'drain' event follows): a QoS 0
 * subscriber that receives many retained messages at once gets all of them.
 */
import { createConnection, createServer, type Server } from 'node:net';
import type { Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { silentLog } from '../helpers/broker-harness.js';
import { RawClient } from '../helpers/raw-client.js';

let server: Server | undefined;
let broker: Broker | undefined;
afterEach(async () => {
  await broker?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  broker = undefined;
});

describe('queued messages after a write the socket took whole', () => {
  it('delivers every retained message to a QoS 0 subscriber over TCP when they exceed the high-water mark many times', async () => {
    // Above net.Socket's own 16 KiB writable high-water mark, like the default 256 KiB: a
    // write the kernel takes whole then returns true and no 'drain' follows.
    broker = new Broker({ socketHighWater: 20_000, maxQueuedMessages: 10_000 }, { log: silentLog });
    const b = broker;
    server = createServer((s) => b.handle(s, { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: s.remotePort ?? 0 }));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const N = 4000; // ~440 KB: the high-water mark twenty times over
    for (let i = 0; i < N; i++) {
      broker.publish({ topic: `r/${i}`, payload: Buffer.alloc(100, 0x61), qos: 0, retain: true, origin: { kind: 'serial', id: 'd' } });
    }
    const socket = createConnection({ port, host: '127.0.0.1' });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const c = new RawClient(socket, 4);
    await c.connect({ clientId: 'reader' });
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'r/#', qos: 0 }] } as Packet);
    await c.next('suback');
    const deadline = Date.now() + 5000;
    while (c.received.filter((p) => p.cmd === 'publish').length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(c.received.filter((p) => p.cmd === 'publish')).toHaveLength(N);
    c.destroy();
  });
});
