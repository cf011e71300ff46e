/**
 * broker.write_coalescing: publishes to a connection written to within the window wait
 * for its end and share one socket write; acknowledgements never wait, and a client
 * whose QoS 1/2 window is half used gets its messages at once. Counted on the server's
 * side of a real TCP connection (the stream handed to the broker).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { silentLog } from '../helpers/broker-harness.js';
import { RawClient } from '../helpers/raw-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: Server | undefined;
let broker: Broker | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await broker?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  broker = undefined;
});

/** A broker on a loopback port; `writes` counts socket writes per client id. */
async function start(options: Partial<BrokerOptions>): Promise<{ port: number; writes: Map<string, number> }> {
  const b = (broker = new Broker(options, { log: silentLog }));
  const writes = new Map<string, number>();
  server = createServer((s: Socket) => {
    const write = s.write.bind(s) as (chunk: Buffer) => boolean;
    let id = '';
    s.write = ((chunk: Buffer) => {
      if (id === '') id = [...b.clients(100)].find((c) => c.address.endsWith(`:${s.remotePort}`))?.clientId ?? '';
      writes.set(id, (writes.get(id) ?? 0) + 1);
      return write(chunk);
    }) as Socket['write'];
    b.handle(s, { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: s.remotePort ?? 0 });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, writes };
}

async function client(port: number, clientId: string, version: 4 | 5 = 4, properties?: Record<string, unknown>): Promise<RawClient> {
  const socket = createConnection({ port, host: '127.0.0.1' });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const c = new RawClient(socket, version);
  clients.push(c);
  await c.connect({ clientId, ...(properties ? { properties } : {}) } as Partial<Extract<Packet, { cmd: 'connect' }>>);
  return c;
}

async function subscribe(c: RawClient, filter: string, qos: 0 | 1): Promise<void> {
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] } as Packet);
  await c.next('suback');
}

const publishes = (c: RawClient) => c.received.filter((p): p is Extract<Packet, { cmd: 'publish' }> => p.cmd === 'publish');

function publish(i: number, qos: 0 | 1 = 0): void {
  broker!.publish({ topic: `t/${i}`, payload: Buffer.from(String(i)), qos, retain: false, origin: { kind: 'serial', id: 'dev' } });
}

describe('write coalescing', () => {
  it('sends a busy subscriber the messages of one window in one socket write, in order', async () => {
    const { port, writes } = await start({ writeCoalescingMs: 200 });
    const sub = await client(port, 'sub');
    await subscribe(sub, 't/#', 0);
    await sleep(250); // the SUBACK's write is older than the window
    const before = writes.get('sub') ?? 0;
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      publish(i);
      await sleep(2);
    }
    while (publishes(sub).length < 20 && performance.now() - t0 < 2000) await sleep(5);
    expect(publishes(sub).map((p) => p.topic)).toEqual(Array.from({ length: 20 }, (_, i) => `t/${i}`));
    // The first at once (nothing written within the window), the other 19 together.
    expect((writes.get('sub') ?? 0) - before).toBe(2);
  });

  it('keeps a held message no longer than the window', async () => {
    const { port } = await start({ writeCoalescingMs: 100 });
    const sub = await client(port, 'sub');
    await subscribe(sub, 't/#', 0);
    publish(0); // held: the SUBACK went out just now
    const t0 = performance.now();
    while (publishes(sub).length < 1 && performance.now() - t0 < 2000) await sleep(2);
    expect(publishes(sub)).toHaveLength(1);
    expect(performance.now() - t0).toBeLessThan(100 + 80);
  });

  it('never holds an acknowledgement, and the acknowledgement takes the held messages along', async () => {
    const { port, writes } = await start({ writeCoalescingMs: 1000 });
    const c = await client(port, 'both');
    await subscribe(c, 't/#', 0);
    publish(1); // held for up to a second: the SUBACK was just written
    await sleep(20);
    expect(publishes(c)).toHaveLength(0);
    const t0 = performance.now();
    c.send({ cmd: 'publish', topic: 'other', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false } as Packet);
    const ack = await c.next('puback', 500);
    expect(ack.messageId).toBe(7);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(publishes(c).map((p) => p.topic)).toEqual(['t/1']); // it went out with the PUBACK
    const t1 = performance.now();
    c.send({ cmd: 'pingreq' } as Packet);
    await c.next('pingresp', 500);
    expect(performance.now() - t1).toBeLessThan(200);
    expect(writes.get('both')).toBeGreaterThanOrEqual(3); // CONNACK, SUBACK, PUBACK with t/1, PINGRESP
  });

  it('writes at once to a client whose QoS 1 window is half used, since it waits for them', async () => {
    const { port } = await start({ writeCoalescingMs: 1000 });
    const sub = await client(port, 'small-window', 5, { receiveMaximum: 2 });
    await subscribe(sub, 't/#', 1);
    await sleep(50);
    publish(1, 1); // the SUBACK was 50 ms ago: held, with nothing in flight
    publish(2, 1); // one in flight of a window of two: this write goes out now, with the first
    const t0 = performance.now();
    while (publishes(sub).length < 2 && performance.now() - t0 < 2000) await sleep(2);
    expect(publishes(sub).map((p) => p.topic)).toEqual(['t/1', 't/2']);
    expect(performance.now() - t0).toBeLessThan(300);
  });

  it('writes each message in its own tick when set to 0', async () => {
    const { port, writes } = await start({ writeCoalescingMs: 0 });
    const sub = await client(port, 'sub');
    await subscribe(sub, 't/#', 0);
    const before = writes.get('sub') ?? 0;
    for (let i = 0; i < 10; i++) {
      publish(i);
      await sleep(2);
    }
    const t0 = performance.now();
    while (publishes(sub).length < 10 && performance.now() - t0 < 2000) await sleep(2);
    expect(publishes(sub)).toHaveLength(10);
    expect((writes.get('sub') ?? 0) - before).toBe(10);
  });
});
