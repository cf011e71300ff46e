/**
 * A password check waiting for its turn whose client left (its connect timeout was shorter
 * than the wait, on a busy Pi) was skipped when its turn came, but held its room in the
 * waiting line until then: a device that gave up and reconnected a dozen times from one
 * address was refused as server busy (CONNACK 0x89) because of its own earlier attempts,
 * none of which was still waiting for an answer. Also: one host is one source, over IPv4 or
 * a dual-stack listener (::ffff:a.b.c.d) alike.
 */
import type { Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import type { PasswordVerifier } from '../../src/auth/access-control.js';
import { VerifyQueue } from '../../src/broker/verify-queue.js';
import { startAuthBroker, type AuthHarness } from '../helpers/auth-harness.js';

let h: AuthHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const connect = (i: number) => ({ cmd: 'connect', clientId: `dev-${i}`, protocolVersion: 5, clean: true, keepalive: 0, username: 'dev', password: Buffer.from('pw') }) as Packet;
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('password checks of clients that left while waiting', () => {
  it('hold no room: the client reconnecting from the same address waits its turn instead of being refused as busy', async () => {
    const never: PasswordVerifier = { verify: () => new Promise(() => undefined) };
    h = await startAuthBroker({ passwords: never, maxConcurrentChecks: 1 });
    // One check runs for ever; the line holds 50, a quarter of it (12) from one address.
    const first = h.client(5, { remoteAddress: '10.0.0.9' });
    first.send(connect(0));
    const gaveUp = Array.from({ length: 12 }, (_, i) => h!.client(5, { remoteAddress: '10.0.0.9' }));
    gaveUp.forEach((c, i) => c.send(connect(i + 1)));
    await settle();
    expect(gaveUp.every((c) => c.received.length === 0)).toBe(true); // all waiting
    for (const c of gaveUp) c.destroy();
    await settle();
    const again = h.client(5, { remoteAddress: '10.0.0.9' });
    again.send(connect(99));
    await settle();
    expect(again.received).toEqual([]); // waiting, not CONNACK 0x89
    expect(again.closed).toBe(false);
  });

  it('hold no room in the whole line either', async () => {
    const q = new VerifyQueue(() => 1, 4); // a line of 4, one per source at most
    const gone = new Set<number>();
    expect(q.submit(() => new Promise(() => undefined), () => false, 'running')).toBe(true);
    for (let i = 0; i < 4; i++) expect(q.submit(async () => {}, () => gone.has(i), `host-${i}`)).toBe(true);
    expect(q.submit(async () => {}, () => false, 'host-9')).toBe(false); // full
    gone.add(1);
    gone.add(2);
    expect(q.submit(async () => {}, () => false, 'host-9')).toBe(true);
    expect(q.queued).toBe(3);
  });

  it('are still refused as busy when those waiting are still there', async () => {
    const q = new VerifyQueue(() => 1, 4);
    expect(q.submit(() => new Promise(() => undefined), () => false, 'a')).toBe(true);
    expect(q.submit(async () => {}, () => false, 'a')).toBe(true);
    expect(q.submit(async () => {}, () => false, 'a')).toBe(false); // a's share of a line of 4 is 1
    expect(q.queued).toBe(1);
  });
});

describe('the share of one host in the waiting line', () => {
  it('is one for its IPv4 address whether it came over an IPv4 listener or a dual-stack one (::ffff:)', () => {
    const q = new VerifyQueue(() => 1, 4); // a line of 4, one per source at most
    expect(q.submit(() => new Promise(() => undefined), () => false, '10.0.0.1')).toBe(true);
    expect(q.submit(async () => {}, () => false, '::ffff:10.0.0.7')).toBe(true);
    expect(q.submit(async () => {}, () => false, '10.0.0.7')).toBe(false);
    expect(q.submit(async () => {}, () => false, '::ffff:10.0.0.8')).toBe(true);
    expect(q.submit(async () => {}, () => false, 'fe80::1')).toBe(true);
  });
});
