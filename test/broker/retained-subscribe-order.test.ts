/**
 * A persistent session's SUBACK waits for the commit that stores its subscription, while
 * the subscription already routes live messages. The retained messages it owes must still
 * come before any message published meanwhile: a dashboard keeps the last value it got,
 * and a stale retained one arriving after a newer live one would be shown as the state.
 * Real SQLite file; a commit window holds the subscription's commit back for a while.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Packet } from 'mqtt-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { persistentBroker, type PersistHarness } from '../helpers/persist-harness.js';

let dir: string;
let h: PersistHarness | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-retained-order-'));
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('retained messages for a new subscription of a persistent session', () => {
  it.each([
    { version: 4 as const, connect: { clean: false } },
    { version: 5 as const, connect: { clean: true, properties: { sessionExpiryInterval: 60 } } },
  ])('reach an MQTT $version client before a message published while the subscription is being stored [MQTT-4.6.0-5]', async ({ version, connect }) => {
    // Commits at most every 300 ms: the subscription's commit waits behind the retained one's.
    h = await persistentBroker(dir, { commitWindowMs: 300 });
    const pub = h.client(version);
    await pub.connect({ clientId: 'sensor' });
    pub.send({ cmd: 'publish', topic: 'light/state', payload: Buffer.from('OFF'), qos: 1, messageId: 1, retain: true, dup: false } as Packet);
    await pub.next('puback');

    const sub = h.client(version);
    await sub.connect({ clientId: 'dashboard', ...connect });
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'light/+', qos: 1 }] } as Packet);
    // Published (by the same client, same QoS) before the subscription's commit ends.
    pub.send({ cmd: 'publish', topic: 'light/state', payload: Buffer.from('ON'), qos: 1, messageId: 2, retain: false, dup: false } as Packet);
    await sub.next('suback', 3000);
    await pub.next('puback', 3000);
    const got: Extract<Packet, { cmd: 'publish' }>[] = [];
    for (let i = 0; i < 2; i++) got.push(await sub.next('publish'));

    expect(got.map((p) => [p.payload.toString(), p.retain])).toEqual([
      ['OFF', true],
      ['ON', false],
    ]);
  });
});
