/**
 * The outbox contract, second half: per-bridge caps (rows, bytes, age), the three
 * when_full policies and their drop counters, and MQTT 5 message expiry.
 */
import { describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import type { OutboxLimits, OutboxPolicy } from '../../src/store/outbox.js';
import type { FakeClock } from '../helpers/fake-clock.js';
import { msg, payloads, type OutboxFactory, type OutboxHarness } from './outbox-helpers.js';

const NONE: OutboxLimits = { maxRows: Infinity, maxBytes: Infinity, maxAgeMs: Infinity, whenFull: 'drop-oldest' };

/** Five 3-byte messages ("t" + "m1".."m5") against a cap of three of them. */
const POLICIES: Array<{ policy: OutboxPolicy; kept: string[]; drop: string; rejected: number }> = [
  { policy: 'drop-oldest', kept: ['m3', 'm4', 'm5'], drop: 'full-oldest', rejected: 0 },
  { policy: 'drop-newest', kept: ['m1', 'm2', 'm3'], drop: 'full-newest', rejected: 0 },
  { policy: 'reject', kept: ['m1', 'm2', 'm3'], drop: 'full-rejected', rejected: 2 },
];
const CAPS: Array<{ cap: string; limits: Partial<OutboxLimits> }> = [
  { cap: 'max_rows', limits: { maxRows: 3 } },
  { cap: 'max_bytes', limits: { maxBytes: 9 } },
];
const MODES = ['in one tick', 'one after another'] as const;

export function outboxCapsContract(get: () => { h: OutboxHarness; clock: FakeClock }, factory: OutboxFactory): void {
  describe('caps and policies', () => {
    for (const { policy, kept, drop, rejected } of POLICIES) {
      for (const { cap, limits } of CAPS) {
        for (const mode of MODES) {
          it(`${policy} at ${cap}, appended ${mode}, keeps ${kept.join(',')} and counts ${drop}`, async () => {
            const { outbox } = get().h;
            outbox.configure('cloud', { ...NONE, ...limits, whenFull: policy });
            const all = ['m1', 'm2', 'm3', 'm4', 'm5'];
            const results: PromiseSettledResult<void>[] = [];
            if (mode === 'in one tick') {
              results.push(...(await Promise.allSettled(all.map((p) => outbox.append('cloud', msg('t', p))))));
            } else {
              for (const p of all) results.push(...(await Promise.allSettled([outbox.append('cloud', msg('t', p))])));
            }
            const failed = results.filter((r) => r.status === 'rejected');
            expect(failed).toHaveLength(rejected);
            for (const f of failed) expect(isOutpostError(f.reason, 'STORE_FULL')).toBe(true);
            expect(payloads(outbox, 'cloud')).toEqual(kept);
            expect(outbox.stats('cloud')).toMatchObject({ rows: 3, bytes: 9, drops: { [drop]: 2 } });
          });
        }
      }
    }

    it('drop-oldest drops as many old rows as a bigger message needs', async () => {
      const { outbox } = get().h;
      outbox.configure('cloud', { ...NONE, maxBytes: 9 });
      await Promise.all(['m1', 'm2', 'm3'].map((p) => outbox.append('cloud', msg('t', p))));
      await outbox.append('cloud', msg('t', 'big123'));
      expect(payloads(outbox, 'cloud')).toEqual(['big123']);
      expect(outbox.stats('cloud')).toMatchObject({ rows: 1, bytes: 7, drops: { 'full-oldest': 3 } });
    });

    it('refuses a message bigger than max_bytes even with drop-oldest, keeping the queue', async () => {
      const { outbox } = get().h;
      outbox.configure('cloud', { ...NONE, maxBytes: 9 });
      await outbox.append('cloud', msg('t', 'm1'));
      await outbox.append('cloud', msg('t', 'much too big'));
      expect(payloads(outbox, 'cloud')).toEqual(['m1']);
      expect(outbox.stats('cloud').drops).toEqual({ 'full-newest': 1 });
    });

    it('reject accepts again once an ack made room', async () => {
      const { outbox } = get().h;
      outbox.configure('cloud', { ...NONE, maxRows: 1, whenFull: 'reject' });
      await outbox.append('cloud', msg('t', 'm1'));
      await expect(outbox.append('cloud', msg('t', 'm2'))).rejects.toMatchObject({ code: 'STORE_FULL' });
      outbox.ack('cloud', [outbox.read('cloud', 0, 1)[0]!.seq]);
      await outbox.append('cloud', msg('t', 'm3')); // the ack commits first, in the same batch
      expect(payloads(outbox, 'cloud')).toEqual(['m3']);
    });

    it('caps one bridge without touching another', async () => {
      const { outbox } = get().h;
      outbox.configure('cloud', { ...NONE, maxRows: 1 });
      await Promise.all(['a', 'b', 'c'].map((p) => Promise.all([outbox.append('cloud', msg('t', p)), outbox.append('backup', msg('t', p))])));
      expect(payloads(outbox, 'cloud')).toEqual(['c']);
      expect(payloads(outbox, 'backup')).toEqual(['a', 'b', 'c']);
      expect(outbox.stats('backup').drops).toEqual({});
    });
  });

  describe('ages and expiry', () => {
    it('skips rows older than max_age on read and drops them as expired-age', async () => {
      const { h, clock } = get();
      h.outbox.configure('cloud', { ...NONE, maxAgeMs: 1000 });
      await h.outbox.append('cloud', msg('t', 'old'));
      clock.advance(600);
      await h.outbox.append('cloud', msg('t', 'young'));
      clock.advance(401);
      expect(payloads(h.outbox, 'cloud')).toEqual(['young']);
      await h.outbox.flush();
      expect(h.outbox.stats('cloud')).toMatchObject({ rows: 1, bytes: 6, oldestCreatedAt: clock.now() - 401, drops: { 'expired-age': 1 } });
    });

    it('sweeps rows past max_age even when nobody reads', async () => {
      const { clock } = get();
      const s = await factory({ clock, sweepIntervalMs: 100 });
      try {
        s.outbox.configure('cloud', { ...NONE, maxAgeMs: 1000 });
        await Promise.all(['a', 'b'].map((p) => s.outbox.append('cloud', msg('t', p))));
        clock.advance(500);
        await s.outbox.append('cloud', msg('t', 'c'));
        clock.advance(600); // a and b are 1100 ms old, c 600 ms
        await s.outbox.flush();
        expect(s.outbox.stats('cloud')).toMatchObject({ rows: 1, oldestCreatedAt: clock.now() - 600, drops: { 'expired-age': 2 } });
        expect(payloads(s.outbox, 'cloud')).toEqual(['c']);
      } finally {
        await s.close();
      }
    });

    it('skips and drops a message whose MQTT 5 expiry passed before delivery', async () => {
      const { h, clock } = get();
      await h.outbox.append('cloud', msg('t', 'short-lived', { expiresAt: clock.now() + 500 }));
      await h.outbox.append('cloud', msg('t', 'keeps'));
      await h.outbox.append('cloud', msg('t', 'long-lived', { expiresAt: clock.now() + 5000 }));
      clock.advance(500);
      expect(payloads(h.outbox, 'cloud')).toEqual(['keeps', 'long-lived']);
      expect(h.outbox.read('cloud', 0, 1).map((e) => e.payload.toString())).toEqual(['keeps']); // limit counts live rows
      await h.outbox.flush();
      expect(h.outbox.stats('cloud')).toMatchObject({ rows: 2, drops: { 'expired-message': 1 } });
    });
  });
}
