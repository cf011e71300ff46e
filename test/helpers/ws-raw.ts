/**
 * A raw WebSocket client side for tests that must do what no well-behaved client library
 * does: masked frames written by hand, and a flood of pings whose pongs are never read.
 */
import type net from 'node:net';

/** A masked client frame (mask 0) with `opcode` and a payload of at most 125 bytes. */
export function frame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/**
 * Writes pings (125-byte payloads, 1000 to a write) until the server closes the socket or
 * 10 s pass, waiting 100 ms whenever the socket's buffer is full; true once it closed.
 */
export async function floodPingsUntilClosed(s: net.Socket): Promise<boolean> {
  let closed = false;
  s.on('close', () => (closed = true));
  const pings = Buffer.concat(Array.from({ length: 1000 }, () => frame(0x9, Buffer.alloc(125))));
  const t0 = Date.now();
  while (!closed && Date.now() - t0 < 10_000) {
    if (!s.write(pings)) await new Promise((r) => setTimeout(r, 100));
  }
  return closed;
}
