import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectLimits } from '../../src/broker/connect-limits.js';
import { parseConfigText } from '../../src/config/load.js';
import { TlsListener } from '../../src/broker/tls-listener.js';
import { WsListener } from '../../src/broker/ws-listener.js';
import { testCerts } from '../helpers/certs.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startListener, type ListenerHarness } from '../helpers/listener-harness.js';
import { startGateway, within, type RunningGateway } from '../helpers/gateway-fixture.js';

describe('connection limits', () => {
  it('refuse beyond the total, counting every connection in and out', () => {
    const l = new ConnectLimits({ maxConnections: 2, maxConnectionsPerAddress: 0, connectRate: 0, connectBurst: 10 }, { clock: new FakeClock() });
    expect(l.check('a')).toBeUndefined();
    expect(l.check('b')).toBeUndefined();
    expect(l.check('c')).toBe('max-connections');
  });

  it('refuse beyond the per-address maximum until one of its connections closes', () => {
    const l = new ConnectLimits({ maxConnections: 0, maxConnectionsPerAddress: 2, connectRate: 0, connectBurst: 10 }, { clock: new FakeClock() });
    expect(l.check('a')).toBeUndefined();
    expect(l.check('a')).toBeUndefined();
    expect(l.check('a')).toBe('max-connections-per-address');
    expect(l.check('b')).toBeUndefined();
    l.release('a');
    expect(l.check('a')).toBeUndefined();
  });

  it('let a burst through, then the rate, per address (token bucket)', () => {
    const clock = new FakeClock();
    const l = new ConnectLimits({ maxConnections: 0, maxConnectionsPerAddress: 0, connectRate: 2, connectBurst: 3 }, { clock });
    const tries = (addr: string, n: number) => Array.from({ length: n }, () => l.check(addr) ?? 'ok');
    expect(tries('a', 4)).toEqual(['ok', 'ok', 'ok', 'connect-rate']);
    expect(tries('b', 1)).toEqual(['ok']); // another address has its own bucket
    clock.advance(500); // one token back at 2 per second
    expect(tries('a', 2)).toEqual(['ok', 'connect-rate']);
    clock.advance(10_000);
    l.prune(); // refilled buckets are forgotten; the next attempt starts a full one
    expect(tries('a', 3)).toEqual(['ok', 'ok', 'ok']);
  });
});

describe('connection limits before a TLS or WebSocket handshake', () => {
  it('count a connection in at its TCP accept, handshake under way included, refusing beyond the limits; below them the rate applies', () => {
    const clock = new FakeClock();
    const l = new ConnectLimits({ maxConnections: 3, maxConnectionsPerAddress: 2, connectRate: 1, connectBurst: 2 }, { clock });
    const peer = (a: string) => ({ transport: 'tls' as const, remoteAddress: a, remotePort: 1 });
    expect(l.admitHandshake(peer('a'))).toBe(true);
    expect(l.admitHandshake(peer('a'))).toBe(true);
    // Two counted in (handshakes under way or done): the third from a is refused before it costs anything.
    expect(l.admitHandshake(peer('a'))).toBe(false);
    expect(l.admitHandshake(peer('b'))).toBe(true);
    // The stream handed over after the handshake is not counted again.
    expect(l.admit({ ...peer('b'), countedAtAccept: true })).toBe(true);
    // Three in all: nobody gets a handshake.
    expect(l.admitHandshake(peer('c'))).toBe(false);
    l.release('a');
    // a is under its limit again, but its burst of 2 went to its two connections: the rate
    // applies until a token is back.
    expect(l.admitHandshake(peer('a'))).toBe(false);
    clock.advance(1000);
    expect(l.admitHandshake(peer('a'))).toBe(true);
  });
});

describe('a connect flood from one address', () => {
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  it('does not lock out a client from another address, and each refusal is closed at once and counted', async () => {
    gw = await startGateway('connect_rate: 1\nconnect_burst: 5\nmax_connections_per_address: 20');
    const { port } = gw;
    // 60 connections from 127.0.0.2 as fast as they open.
    const flood = await Promise.all(Array.from({ length: 60 }, () => new Promise<'open' | 'closed'>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      let closed = false;
      s.on('close', () => {
        closed = true;
        resolve('closed');
      });
      setTimeout(() => {
        if (!closed) resolve('open');
        s.destroy();
      }, 500);
    })));
    expect(flood.filter((x) => x === 'open').length).toBeLessThanOrEqual(6);
    const m = gw.gateway.broker.metrics;
    expect(m.limited.get('connect-rate')).toBeGreaterThanOrEqual(54);
    // Meanwhile a client on 127.0.0.1 connects normally.
    const c = await within(mqtt.connectAsync(gw.url, { reconnectPeriod: 0, clientId: 'local' }), 5000, 'connect from 127.0.0.1');
    expect(c.connected).toBe(true);
    await c.endAsync();
  });
});

describe('TLS and WebSocket handshakes under way', () => {
  let harness: ListenerHarness<TlsListener | WsListener> | undefined;
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
  });

  /** Opens n TCP connections that never start their handshake; resolves with how many are still open after ms. */
  async function stalled(port: number, n: number, ms: number): Promise<{ open: number; sockets: net.Socket[] }> {
    const sockets = Array.from({ length: n }, () => net.connect(port, '127.0.0.1').on('error', () => undefined));
    let closed = 0;
    for (const s of sockets) s.on('close', () => closed++).resume();
    await new Promise((r) => setTimeout(r, ms));
    return { open: n - closed, sockets };
  }

  for (const kind of ['mqtts', 'ws'] as const) {
    it(`count against max_connections_per_address on a ${kind} listener, and give their place back when they close`, async () => {
      const certs = testCerts();
      const yaml = kind === 'mqtts' ? `type: mqtts, cert: ${certs.server.crt}, key: ${certs.server.key}` : 'type: ws';
      const l = parseConfigText(`listeners:\n  - { host: 127.0.0.1, port: 0, ${yaml} }\n`, 't.yaml').listeners[0]!;
      harness = await startListener(
        (broker, log) => (l.type === 'mqtts' ? new TlsListener(l, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000 })
          : new WsListener(l as Extract<typeof l, { type: 'ws' }>, 'listeners[0]', broker, log, { handshakeTimeoutMs: 2000, maxPayload: 4096 })),
        { maxConnectionsPerAddress: 3 },
      );
      const url = kind === 'mqtts' ? `mqtts://127.0.0.1:${harness.port}` : `ws://127.0.0.1:${harness.port}/mqtt`;
      const flood = await stalled(harness.port, 10, 300);
      expect(flood.open).toBe(3);
      for (const s of flood.sockets) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
      // Their places are free again, and a connection that completes its handshake counts once.
      const clients = [];
      for (let i = 0; i < 3; i++) clients.push(await mqtt.connectAsync(url, { reconnectPeriod: 0, rejectUnauthorized: false, clientId: `c${i}` }));
      await expect(mqtt.connectAsync(url, { reconnectPeriod: 0, rejectUnauthorized: false, connectTimeout: 1000 })).rejects.toBeDefined();
      await clients.pop()!.endAsync();
      await new Promise((r) => setTimeout(r, 100));
      clients.push(await mqtt.connectAsync(url, { reconnectPeriod: 0, rejectUnauthorized: false, clientId: 'again' }));
      await Promise.all(clients.map((c) => c.endAsync()));
    });
  }
});
