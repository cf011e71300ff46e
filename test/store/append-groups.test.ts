/**
 * One message, several bridges (src/store/append-groups.ts): appends that share a group are
 * stored all or nothing when a full when_full: reject bridge refuses the message; the other
 * policies keep their meaning. Against the real MemoryOutbox (the same GroupCommitOutbox as
 * SQLite's).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import type { OutboxPolicy } from '../../src/store/outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
const msg = (payload: string): Message => ({ topic: 't', payload: Buffer.from(payload), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'pub' } });

/** Bridges a (cap 1 row, policy a) and b (cap 1 row, policy b), each holding one row already. */
async function full(a: OutboxPolicy, b: OutboxPolicy, bFull = true) {
  const outbox = new MemoryOutbox({ clock: new FakeClock(), log, commitWindowMs: 0 });
  outbox.configure('a', { maxRows: 1, maxBytes: Infinity, maxAgeMs: Infinity, whenFull: a });
  outbox.configure('b', { maxRows: 1, maxBytes: Infinity, maxAgeMs: Infinity, whenFull: b });
  await outbox.append('a', msg('old-a'));
  if (bFull) await outbox.append('b', msg('old-b'));
  /** Appends `payload` to both in one group; what each append did. */
  const offer = async (payload: string, grouped = true) => {
    const m = msg(payload);
    const group = grouped ? m : undefined;
    const r = await Promise.allSettled([outbox.append('a', m, group), outbox.append('b', m, group)]);
    return r.map((x) => x.status);
  };
  const rows = (bridge: string) => outbox.read(bridge, 0, 10).map((e) => e.payload.toString());
  return { outbox, offer, rows };
}

describe('appends of one message to several bridges', () => {
  it('are refused at every bridge, with no oldest row dropped and no drop counted at the others, when a full reject bridge refuses the message', async () => {
    const { outbox, offer, rows } = await full('drop-oldest', 'reject');
    expect(await offer('new')).toEqual(['rejected', 'rejected']);
    expect([rows('a'), rows('b')]).toEqual([['old-a'], ['old-b']]);
    expect(outbox.stats('a').drops).toEqual({});
    expect(outbox.stats('b').drops).toEqual({ 'full-rejected': 1 });
  });

  it('count full-rejected once per refusing bridge when two reject bridges are full', async () => {
    const { outbox, offer } = await full('reject', 'reject');
    expect(await offer('new')).toEqual(['rejected', 'rejected']);
    expect([outbox.stats('a').drops, outbox.stats('b').drops]).toEqual([{ 'full-rejected': 1 }, { 'full-rejected': 1 }]);
  });

  it('are not counted as full-newest at a drop-newest bridge when a reject bridge refuses the message (the publisher resends it)', async () => {
    const { outbox, offer } = await full('drop-newest', 'reject');
    expect(await offer('new')).toEqual(['rejected', 'rejected']);
    expect(outbox.stats('a').drops).toEqual({});
  });

  it('keep each policy when the reject bridge has room: drop-newest drops it there, the reject bridge stores it, the publisher is acknowledged', async () => {
    const { outbox, offer, rows } = await full('drop-newest', 'reject', false);
    expect(await offer('new')).toEqual(['fulfilled', 'fulfilled']);
    expect([rows('a'), rows('b')]).toEqual([['old-a'], ['new']]);
    expect(outbox.stats('a').drops).toEqual({ 'full-newest': 1 });
  });

  it('keep drop-oldest making room when the reject bridge has room', async () => {
    const { offer, rows } = await full('drop-oldest', 'reject', false);
    expect(await offer('new')).toEqual(['fulfilled', 'fulfilled']);
    expect([rows('a'), rows('b')]).toEqual([['new'], ['new']]);
  });

  it('without a group (QoS 0, serial readings) are judged by each bridge alone, as before', async () => {
    const { offer, rows } = await full('drop-oldest', 'reject');
    expect(await offer('new', false)).toEqual(['fulfilled', 'rejected']);
    expect([rows('a'), rows('b')]).toEqual([['new'], ['old-b']]);
  });
});
