/**
 * How the broker turns queued packets into socket writes: what one turn of the event loop
 * queues for a connection goes out as one write (a thousand sensors at a reading a second
 * each arrive in separate callbacks; a dashboard subscribed to all of them should not get a
 * write call per reading), but a burst is written as it grows rather than held to the end
 * of the turn.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { silentLog } from '../helpers/broker-harness.js';
import { RawClient } from '../helpers/raw-client.js';

let server: Server | undefined;
let broker: Broker | undefined;
let client: RawClient | undefined;
afterEach(async () => {
  client?.destroy();
  await broker?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  [server, broker, client] = [undefined, undefined, undefined];
});

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A broker on TCP whose server-side sockets count their write calls, and one subscriber to `t/#`. */
async function subscribed(): Promise<{ b: Broker; c: RawClient; writes: () => number }> {
  const b = (broker = new Broker({}, { log: silentLog }));
  let writes = 0;
  server = createServer((s: Socket) => {
    const write = s.write.bind(s) as (...args: unknown[]) => boolean;
    s.write = ((...args: unknown[]) => {
      writes++;
      return write(...args);
    }) as Socket['write'];
    b.handle(s, { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: s.remotePort ?? 0 });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const socket = createConnection({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const c = (client = new RawClient(socket, 4));
  await c.connect({ clientId: 'dashboard' });
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't/#', qos: 0 }] } as Packet);
  await c.next('suback');
  return { b, c, writes: () => writes };
}

async function publishesReceived(c: RawClient, n: number): Promise<number> {
  const count = () => c.received.filter((p) => p.cmd === 'publish').length;
  const deadline = Date.now() + 5000;
  while (count() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return count();
}

describe('socket writes of the broker', () => {
  it('sends the messages that twenty callbacks of one turn publish to a subscriber in a single write', async () => {
    const { b, c, writes } = await subscribed();
    const before = writes();
    // Twenty callbacks of one check phase, as twenty datagrams are twenty callbacks of one poll phase.
    await new Promise<void>((done) => {
      for (let i = 0; i < 20; i++) {
        setImmediate(() => {
          b.publish({ topic: `t/${i}`, payload: Buffer.from(String(i)), qos: 0, retain: false, origin: { kind: 'mqttsn', id: `sensor-${i}` } });
          if (i === 19) done();
        });
      }
    });
    await nextTurn();
    await nextTurn();
    expect(writes() - before).toBe(1);
    expect(await publishesReceived(c, 20)).toBe(20);
  });

  it('writes a burst of 300 KiB as it grows, before the turn that queued it ends', async () => {
    const { b, c, writes } = await subscribed();
    const before = writes();
    for (let i = 0; i < 300; i++) {
      b.publish({ topic: `t/${i}`, payload: Buffer.alloc(1024, 0x61), qos: 0, retain: false, origin: { kind: 'serial', id: 'meter' } });
    }
    // Still inside the turn: every 64 KiB went out when it was queued.
    expect(writes() - before).toBeGreaterThanOrEqual(4);
    expect(await publishesReceived(c, 300)).toBe(300);
  });
});
