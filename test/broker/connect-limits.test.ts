import net from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectLimits } from '../../src/broker/connect-limits.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startGateway, within, type RunningGateway } from '../helpers/gateway-fixture.js';

describe('connection limits', () => {
  it('refuse beyond the total, counting every connection in and out', () => {
    const l = new ConnectLimits({ maxConnections: 2, maxConnectionsPerAddress: 0, connectRate: 0, connectBurst: 10 }, { clock: new FakeClock() });
    expect(l.check('a', 0)).toBeUndefined();
    expect(l.check('b', 1)).toBeUndefined();
    expect(l.check('c', 2)).toBe('max-connections');
  });

  it('refuse beyond the per-address maximum until one of its connections closes', () => {
    const l = new ConnectLimits({ maxConnections: 0, maxConnectionsPerAddress: 2, connectRate: 0, connectBurst: 10 }, { clock: new FakeClock() });
    expect(l.check('a', 0)).toBeUndefined();
    expect(l.check('a', 1)).toBeUndefined();
    expect(l.check('a', 2)).toBe('max-connections-per-address');
    expect(l.check('b', 2)).toBeUndefined();
    l.release('a');
    expect(l.check('a', 2)).toBeUndefined();
  });

  it('let a burst through, then the rate, per address (token bucket)', () => {
    const clock = new FakeClock();
    const l = new ConnectLimits({ maxConnections: 0, maxConnectionsPerAddress: 0, connectRate: 2, connectBurst: 3 }, { clock });
    const tries = (addr: string, n: number) => Array.from({ length: n }, () => l.check(addr, 0) ?? 'ok');
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
  it('refuse a handshake from an address at its limit of open connections or into a full gateway; below the limits the rate applies', () => {
    const clock = new FakeClock();
    const l = new ConnectLimits({ maxConnections: 3, maxConnectionsPerAddress: 2, connectRate: 1, connectBurst: 2 }, { clock });
    const peer = (a: string) => ({ transport: 'tls' as const, remoteAddress: a, remotePort: 1 });
    expect(l.admitHandshake(peer('a'), 0)).toBe(true);
    expect(l.check('a', 0, true)).toBeUndefined();
    expect(l.admitHandshake(peer('a'), 1)).toBe(true);
    expect(l.check('a', 1, true)).toBeUndefined();
    // Two open: the third handshake from a is refused before it costs anything.
    expect(l.admitHandshake(peer('a'), 2)).toBe(false);
    expect(l.admitHandshake(peer('b'), 2)).toBe(true);
    expect(l.check('b', 2, true)).toBeUndefined();
    // Three open in all: nobody gets a handshake.
    expect(l.admitHandshake(peer('c'), 3)).toBe(false);
    l.release('a');
    // a is under its limit again, but its burst of 2 went to its two connections: the rate
    // applies until a token is back.
    expect(l.admitHandshake(peer('a'), 2)).toBe(false);
    clock.advance(1000);
    expect(l.admitHandshake(peer('a'), 2)).toBe(true);
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
