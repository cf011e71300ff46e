import { afterEach, describe, expect, it } from 'vitest';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { startAuthBroker, type AuthHarness } from '../helpers/auth-harness.js';
import type { PasswordVerifier } from '../../src/auth/access-control.js';

let h: AuthHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const wire = (p: Packet, v: 4 | 5 = 4) => mqttPacket.generate(p, { protocolVersion: v });

describe('password file at CONNECT', () => {
  it('admits a user with the right password, and refuses a wrong password with 4 after the failure delay', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' }, failureDelayMs: 300 });
    const ok = await h.client(4).connect({ clientId: 'a', username: 'alice', password: Buffer.from('secret') });
    expect(ok.returnCode).toBe(0);
    const bad = h.client(4);
    const t0 = performance.now();
    const refused = await bad.connect({ clientId: 'b', username: 'alice', password: Buffer.from('wrong') });
    const took = performance.now() - t0;
    expect(refused.returnCode).toBe(4);
    expect(took).toBeGreaterThanOrEqual(290);
    await bad.waitClosed();
    expect(h.broker.metrics.authFailures).toBe(1);
  });

  it('refuses an unknown user exactly like a wrong password: v5 0x86 after the same delay', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' }, failureDelayMs: 300 });
    const times: number[] = [];
    for (const user of ['alice', 'mallory']) {
      const c = h.client(5);
      const t0 = performance.now();
      const connack = await c.connect({ clientId: `x-${user}`, username: user, password: Buffer.from('guess') });
      times.push(performance.now() - t0);
      expect(connack.reasonCode).toBe(0x86);
      await c.waitClosed();
    }
    expect(Math.min(...times)).toBeGreaterThanOrEqual(290);
    // Same scrypt cost and the same fixed delay: no difference worth a guess (generous margin).
    expect(Math.abs(times[0]! - times[1]!)).toBeLessThan(250);
  });

  it('processes packets pipelined behind CONNECT only after CONNACK, in order', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' } });
    const seen: string[] = [];
    h.broker.subscribe('t/#', { kind: 'system', id: 'test' }, { qos: 0 }, (m) => void seen.push(m.payload.toString()));
    const c = h.client(4);
    c.sendRaw(Buffer.concat([
      wire({ cmd: 'connect', clientId: 'p', protocolVersion: 4, clean: true, keepalive: 0, username: 'alice', password: Buffer.from('secret') } as Packet),
      wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't/#', qos: 0 }] } as Packet),
      wire({ cmd: 'publish', topic: 't/1', payload: Buffer.from('one'), qos: 1, messageId: 2, retain: false, dup: false } as Packet),
    ]));
    await c.next('puback');
    const order = (await c.settle(20)).map((p) => p.cmd);
    expect(order).toEqual(['connack', 'suback', 'publish']); // PUBACK was taken above
    expect(seen).toEqual(['one']);
  });

  it('sends CONNACK before the SUBACK of a pipelined SUBSCRIBE', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' } });
    const c = h.client(4);
    const cmds: string[] = [];
    c.stream.on('data', (b: Buffer) => cmds.push((b[0]! >> 4).toString()));
    c.sendRaw(Buffer.concat([
      wire({ cmd: 'connect', clientId: 'p', protocolVersion: 4, clean: true, keepalive: 0, username: 'alice', password: Buffer.from('secret') } as Packet),
      wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x', qos: 0 }] } as Packet),
    ]));
    await c.next('suback');
    expect(cmds[0]).toBe('2'); // CONNACK is the first byte back
  });

  it('drops what was pipelined behind a refused CONNECT', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' } });
    const seen: string[] = [];
    h.broker.subscribe('t/#', { kind: 'system', id: 'test' }, { qos: 0 }, (m) => void seen.push(m.topic));
    const c = h.client(4);
    c.sendRaw(Buffer.concat([
      wire({ cmd: 'connect', clientId: 'p', protocolVersion: 4, clean: true, keepalive: 0, username: 'alice', password: Buffer.from('nope') } as Packet),
      wire({ cmd: 'publish', topic: 't/1', payload: Buffer.from('x'), qos: 0, retain: false, dup: false } as Packet),
    ]));
    expect((await c.next('connack')).returnCode).toBe(4);
    await c.waitClosed();
    expect(seen).toEqual([]);
  });

  it('cleans up a connection closed while its password is checked', async () => {
    let release!: (ok: boolean) => void;
    const slow: PasswordVerifier = { verify: () => new Promise((r) => (release = r)) };
    h = await startAuthBroker({ passwords: slow });
    const c = h.client(4);
    c.send({ cmd: 'connect', clientId: 'gone', protocolVersion: 4, clean: true, keepalive: 0, username: 'alice', password: Buffer.from('pw') } as Packet);
    await c.settle(20);
    c.destroy();
    await c.waitClosed();
    await new Promise((r) => setTimeout(r, 20));
    expect(h.broker.connectionCount).toBe(0);
    release(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.broker.sessionCount).toBe(0);
    expect(h.broker.verifyQueue.active).toBe(0);
  });

  it('cuts a client that sends more than twice the maximum packet size before its CONNACK', async () => {
    const never: PasswordVerifier = { verify: () => new Promise(() => undefined) };
    h = await startAuthBroker({ passwords: never }, { maxPacketSize: 64 * 1024 });
    const c = h.client(4);
    const big = (i: number) => wire({ cmd: 'publish', topic: 't', payload: Buffer.alloc(60 * 1024, i), qos: 0, retain: false, dup: false } as Packet);
    c.sendRaw(Buffer.concat([
      wire({ cmd: 'connect', clientId: 'big', protocolVersion: 4, clean: true, keepalive: 0, username: 'u', password: Buffer.from('p') } as Packet),
      big(1), big(2), big(3),
    ]));
    await c.waitClosed();
    expect(h.broker.metrics.violations.get('protocol-error')).toBe(1);
  });

  it('runs at most max_concurrent_checks verifications at once and refuses as busy beyond the waiting line', async () => {
    let running = 0;
    let peak = 0;
    const slow: PasswordVerifier = {
      verify: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        return true;
      },
    };
    h = await startAuthBroker({ passwords: slow, maxConcurrentChecks: 2 });
    const clients = Array.from({ length: 20 }, (_, i) => h!.client(4));
    const acks = await Promise.all(clients.map((c, i) => c.connect({ clientId: `c${i}`, username: 'u', password: Buffer.from('p') })));
    expect(acks.every((a) => a.returnCode === 0)).toBe(true);
    expect(peak).toBe(2);
    // The waiting line holds 50 per slot: the 101st waiting client is told the server is busy.
    const never: PasswordVerifier = { verify: () => new Promise(() => undefined) };
    await h.close();
    h = await startAuthBroker({ passwords: never, maxConcurrentChecks: 1 });
    for (let i = 0; i < 51; i++) h.client(5).send({ cmd: 'connect', clientId: `w${i}`, protocolVersion: 5, clean: true, keepalive: 0, username: 'u', password: Buffer.from('p') } as Packet);
    const busy = await h.client(5).connect({ clientId: 'late', username: 'u', password: Buffer.from('p') });
    expect(busy.reasonCode).toBe(0x89);
  });
});

describe('the safe default with a password file', () => {
  it('admits password-file users on a listener beyond loopback and refuses anonymous clients there', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' } });
    const user = await h.client(4, { refuseAnonymous: true }).connect({ clientId: 'a', username: 'alice', password: Buffer.from('secret') });
    expect(user.returnCode).toBe(0);
    const anon = await h.client(4, { refuseAnonymous: true }).connect({ clientId: 'b' });
    expect(anon.returnCode).toBe(5);
  });

  it('still admits a client without a user name on a loopback listener, as anonymous', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' } });
    expect((await h.client(4).connect({ clientId: 'anon' })).returnCode).toBe(0);
  });

  it('takes a certificate identity as the user without checking a password', async () => {
    h = await startAuthBroker({ users: { alice: 'secret' } });
    const c = await h.client(5, { refuseAnonymous: true, identity: 'device-7' }).connect({ clientId: 'd7' });
    expect(c.reasonCode).toBe(0);
  });
});
