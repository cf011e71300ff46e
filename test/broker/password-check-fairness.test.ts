/**
 * Password checks are queued fairly between source addresses. One host sending CONNECTs with
 * wrong passwords (no credentials needed; connect_rate is off by default) filled the shared
 * waiting line: a user with the right password on another host waited behind all of it or
 * was refused with CONNACK 3 / 0x89 "server busy" (400 guesses from one address refused the
 * real user at once against a running gateway).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Packet } from 'mqtt-packet';
import type { PasswordVerifier } from '../../src/auth/access-control.js';
import { startAuthBroker, type AuthHarness } from '../helpers/auth-harness.js';

let h: AuthHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Takes `ms` per check; only bob's right password passes; records who was checked, in order. */
function slowVerifier(ms: number, order: string[]): PasswordVerifier {
  return {
    verify: async (user, password) => {
      order.push(user);
      await new Promise((r) => setTimeout(r, ms));
      return user === 'bob' && Buffer.from(password).toString() === 'right';
    },
  };
}

const guess = (i: number) => ({ cmd: 'connect', clientId: `m${i}`, protocolVersion: 4, clean: true, keepalive: 0, username: 'mallory', password: Buffer.from(`guess${i}`) }) as Packet;

describe('password checks under a flood of wrong passwords from one address', () => {
  it('check a client from another address next, not after the whole flood', async () => {
    const order: string[] = [];
    h = await startAuthBroker({ passwords: slowVerifier(5, order), maxConcurrentChecks: 1, failureDelayMs: 0 });
    for (let i = 0; i < 40; i++) h.client(4, { remoteAddress: '10.0.0.66' }).send(guess(i));
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    const ack = await h.client(4, { remoteAddress: '10.0.0.7' }).connect({ clientId: 'bob-1', username: 'bob', password: Buffer.from('right') });
    expect(ack.returnCode).toBe(0);
    expect(order.slice(0, order.indexOf('bob')).length).toBeLessThan(10); // not behind the 40
    expect(Date.now() - started).toBeLessThan(150);
  });

  it('refuse as busy only the flooding address once it holds a quarter of the line, not the others', async () => {
    const never: PasswordVerifier = { verify: () => new Promise(() => undefined) };
    h = await startAuthBroker({ passwords: never, maxConcurrentChecks: 1 });
    // One running, then the line of 50: a quarter of it (12) may wait for one address.
    const flood = Array.from({ length: 14 }, () => h!.client(5, { remoteAddress: '10.0.0.66' }));
    flood.forEach((c, i) => c.send({ ...guess(i), protocolVersion: 5 } as Packet));
    await new Promise((r) => setTimeout(r, 20));
    const refused = flood.filter((c) => c.received.some((p) => p.cmd === 'connack'));
    expect(refused).toHaveLength(1);
    expect((refused[0]!.received[0] as { reasonCode?: number }).reasonCode).toBe(0x89);
    const other = h.client(5, { remoteAddress: '10.0.0.7' });
    other.send({ cmd: 'connect', clientId: 'bob-1', protocolVersion: 5, clean: true, keepalive: 0, username: 'bob', password: Buffer.from('right') } as Packet);
    await new Promise((r) => setTimeout(r, 20));
    expect(other.received).toEqual([]); // waiting its turn, not refused
    expect(other.closed).toBe(false);
  });
});
