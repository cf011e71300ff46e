/**
 * MQTT 3.1.1 has no No Local: a bridge with in/both rules connects with the bridge flag
 * (protocol level 0x84, as Mosquitto's own bridge does with `try_private`) so the cloud does
 * not send our publishes back; a broker that refuses the flag gets a plain CONNECT next time.
 * The loop itself is shown against a real Mosquitto in test/e2e/bridge.test.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { makeClient } from '../helpers/upstream-harness.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** Answers each CONNECT with the next return code of `codes` and records the CONNECTs. */
async function broker(codes: number[]): Promise<{ port: number; connects: (IConnectPacket & { bridgeMode?: boolean })[] }> {
  const connects: (IConnectPacket & { bridgeMode?: boolean })[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p: Packet) => {
      if (p.cmd !== 'connect') return;
      connects.push(p);
      const returnCode = codes[connects.length - 1] ?? 0;
      socket.write(mqttPacket.generate({ cmd: 'connack', sessionPresent: false, returnCode }, { protocolVersion: 4 }));
      if (returnCode !== 0) socket.end();
    });
    socket.on('data', (b: Buffer) => parser.parse(b));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as { port: number }).port, connects };
}

describe('the 3.1.1 bridge flag', () => {
  it('connects with protocol level 0x84 when asked, and without it after the broker answers CONNACK 1', async () => {
    const b = await broker([1, 0]);
    const { client, rec } = makeClient({ url: `mqtt://127.0.0.1:${b.port}`, protocolVersion: 4, bridgeMode: true, backoff: { baseMs: 10, capMs: 20 } });
    cleanups.push(() => client.stop());
    await client.start(new AbortController().signal);
    await rec.until(() => rec.ups.length === 1, 'up');
    expect(b.connects.map((c) => [c.protocolVersion, c.bridgeMode === true])).toEqual([
      [4, true],
      [4, false],
    ]);
    expect(rec.warnings()).toEqual([expect.stringMatching(/refused the 3\.1\.1 bridge flag \(protocol level 0x84\); connecting as a plain client/)]);
  });

  it('sends a plain 3.1.1 CONNECT when not asked', async () => {
    const b = await broker([0]);
    const { client, rec } = makeClient({ url: `mqtt://127.0.0.1:${b.port}`, protocolVersion: 4 });
    cleanups.push(() => client.stop());
    await client.start(new AbortController().signal);
    await rec.until(() => rec.ups.length === 1, 'up');
    expect(b.connects.map((c) => c.bridgeMode === true)).toEqual([false]);
  });
});
