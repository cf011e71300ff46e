/** The fault proxy itself, against an echo server: every mode does what the flap tests rely on. */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy } from './fault-proxy.js';

let echo: Server;
let proxy: FaultProxy;
/** Bytes the echo server received (what got through towards the "cloud"). */
let serverGot = 0;
const sockets: Socket[] = [];

beforeEach(async () => {
  serverGot = 0;
  echo = createServer((s) => {
    s.on('data', (b: Buffer) => (serverGot += b.length));
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  proxy = new FaultProxy((echo.address() as { port: number }).port, '127.0.0.1', 64 * 1024);
  await proxy.start();
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await proxy.close();
  await new Promise((r) => echo.close(r));
});

async function open(): Promise<{ socket: Socket; received: () => number; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port: proxy.port });
  sockets.push(socket);
  let n = 0;
  socket.on('data', (b: Buffer) => (n += b.length));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, received: () => n, closed };
}

async function until(done: () => boolean, ms = 3000): Promise<number> {
  const t0 = Date.now();
  while (!done()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

describe('FaultProxy', () => {
  it('half-open: what the client sends reaches the server, nothing comes back until resumed', async () => {
    const c = await open();
    proxy.halfOpenLink();
    c.socket.write(Buffer.alloc(1000));
    await until(() => serverGot === 1000);
    await new Promise((r) => setTimeout(r, 200));
    expect(c.received()).toBe(0);
    proxy.resume();
    await until(() => c.received() === 1000);
  });

  it('forwards both ways and counts connections', async () => {
    const c = await open();
    c.socket.write(Buffer.alloc(1000));
    await until(() => c.received() === 1000);
    expect([proxy.accepted, proxy.active]).toEqual([1, 1]);
  });

  it('holds every byte while stalled, keeping the sockets open, and delivers them on resume', async () => {
    const c = await open();
    proxy.stall();
    c.socket.write(Buffer.alloc(500_000)); // more than its buffer: the source is paused, not buffered
    await new Promise((r) => setTimeout(r, 100));
    expect(c.received()).toBe(0);
    expect(proxy.active).toBe(1);
    proxy.resume();
    await until(() => c.received() === 500_000);
  });

  it('destroys every connection on drop', async () => {
    const c = await open();
    proxy.drop();
    await c.closed;
    expect(proxy.active).toBe(0);
  });

  it('accepts and closes at once while refusing', async () => {
    proxy.refuse();
    const c = await open();
    await c.closed;
    expect(proxy.accepted).toBe(1);
  });

  it('delays each chunk by the given time', async () => {
    const c = await open();
    proxy.delay(150);
    c.socket.write('x');
    expect(await until(() => c.received() === 1)).toBeGreaterThanOrEqual(250); // both ways
  });

  it('limits the rate in bytes per second', async () => {
    const c = await open();
    proxy.slow(20_000);
    c.socket.write(Buffer.alloc(10_000));
    const ms = await until(() => c.received() === 10_000);
    expect(ms).toBeGreaterThanOrEqual(350);
  });
});
