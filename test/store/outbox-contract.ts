/**
 * The contract every Outbox implementation passes (like MQTT.js abstract_store and
 * aedes-persistence abstract.js). outbox.test.ts runs it against SQLite on a file,
 * SQLite :memory: and MemoryOutbox. Caps, policies and ages are in outbox-contract-caps.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { outboxCapsContract } from './outbox-contract-caps.js';
import { door, msg, payloads, type OutboxFactory, type OutboxHarness } from './outbox-helpers.js';

export type { OutboxFactory, OutboxFactoryOptions, OutboxHarness } from './outbox-helpers.js';

export function outboxContract(name: string, factory: OutboxFactory): void {
  describe(`${name}: outbox contract`, () => {
    let clock: FakeClock;
    let h: OutboxHarness;
    beforeEach(async () => {
      clock = new FakeClock();
      h = await factory({ clock });
    });
    afterEach(async () => {
      await h.close();
    });

    it('reads back an appended message with every field, oldest first', async () => {
      const { outbox } = h;
      const properties = {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: 'reply/here',
        correlationData: Buffer.from([0, 1, 2, 255]),
        userProperties: { site: '17', tags: ['a', 'b'] },
      };
      await outbox.append('cloud', msg('sensors/a', 'first', { qos: 2, retain: true, properties, expiresAt: clock.now() + 60_000 }));
      clock.advance(5);
      await outbox.append('cloud', msg('sensors/b', 'second', { qos: 0, origin: door }));
      const [a, b] = outbox.read('cloud', 0, 10);
      expect(a).toMatchObject({
        topic: 'sensors/a',
        qos: 2,
        retain: true,
        properties,
        createdAt: clock.now() - 5,
        expiresAt: clock.now() - 5 + 60_000,
        originKind: 'serial',
        originId: 'boiler',
        sourceSeq: 1,
      });
      expect(a!.payload.toString()).toBe('first');
      expect(a!.msgId).toMatch(new RegExp(`^.+-${a!.seq}$`));
      expect(b).toMatchObject({ topic: 'sensors/b', qos: 0, retain: false, properties: undefined, expiresAt: undefined, originKind: 'mqtt' });
      expect(b!.seq).toBeGreaterThan(a!.seq);
      expect(b!.msgId.split('-').slice(0, -1)).toEqual(a!.msgId.split('-').slice(0, -1));
    });

    it('keeps an empty payload as an empty buffer, and empty properties as none', async () => {
      await h.outbox.append('cloud', msg('t', '', { properties: { userProperties: {} } }));
      const [e] = h.outbox.read('cloud', 0, 1);
      expect(e!.payload).toEqual(Buffer.alloc(0));
      expect(e!.properties).toBeUndefined();
    });

    it('stores a copy of the payload, so the publisher may reuse its buffer', async () => {
      const m = msg('t', 'abc');
      const p = h.outbox.append('cloud', m);
      m.payload.write('xyz');
      await p;
      expect(payloads(h.outbox, 'cloud')).toEqual(['abc']);
    });

    it('reads pages after a seq, up to a limit', async () => {
      await Promise.all(['1', '2', '3', '4', '5'].map((p) => h.outbox.append('cloud', msg('t', p))));
      const first = h.outbox.read('cloud', 0, 2);
      expect(first.map((e) => e.payload.toString())).toEqual(['1', '2']);
      const next = h.outbox.read('cloud', first[1]!.seq, 10);
      expect(next.map((e) => e.payload.toString())).toEqual(['3', '4', '5']);
      expect(h.outbox.read('cloud', next[2]!.seq, 10)).toEqual([]);
    });

    it('names the newest committed seq of each bridge, 0 when it has none', async () => {
      expect(h.outbox.newestSeq('cloud')).toBe(0);
      await Promise.all(['1', '2', '3'].map((p) => h.outbox.append('cloud', msg('t', p))));
      await h.outbox.append('other', msg('t', 'x'));
      const rows = h.outbox.read('cloud', 0, 10);
      expect(h.outbox.newestSeq('cloud')).toBe(rows[2]!.seq);
      expect(h.outbox.newestSeq('other')).toBeGreaterThan(rows[2]!.seq);
      h.outbox.ack('cloud', rows.map((r) => r.seq));
      await h.outbox.flush();
      expect(h.outbox.newestSeq('cloud')).toBe(0);
    });

    it('deletes acked rows at the next commit, and acking twice or an unknown seq is harmless', async () => {
      await Promise.all(['1', '2', '3'].map((p) => h.outbox.append('cloud', msg('t', p))));
      const [a, b] = h.outbox.read('cloud', 0, 10);
      h.outbox.ack('cloud', [a!.seq, b!.seq]);
      expect(payloads(h.outbox, 'cloud')).toEqual(['3']); // not returned while the delete is pending
      await h.outbox.flush();
      h.outbox.ack('cloud', [a!.seq, 999_999]);
      await h.outbox.flush();
      expect(payloads(h.outbox, 'cloud')).toEqual(['3']);
      expect(h.outbox.stats('cloud')).toMatchObject({ rows: 1, bytes: 2, drops: {} });
    });

    it('resolves an ack once its delete is committed, and an ack after close without rejecting', async () => {
      await h.outbox.append('cloud', msg('t', 'a'));
      const [row] = h.outbox.read('cloud', 0, 10);
      let done = false;
      const acked = h.outbox.ack('cloud', [row!.seq]).then(() => (done = true));
      expect(done).toBe(false);
      await acked;
      expect(h.outbox.stats('cloud').rows).toBe(0); // committed by the time it resolved
      await h.close();
      await expect(h.outbox.ack('cloud', [row!.seq])).resolves.toBeUndefined();
    });

    it('gives strictly increasing seqs and never reuses one, even after the newest rows were deleted', async () => {
      await Promise.all(['1', '2', '3'].map((p) => h.outbox.append('cloud', msg('t', p))));
      const before = h.outbox.read('cloud', 0, 10).map((e) => e.seq);
      expect(before[0]! < before[1]! && before[1]! < before[2]!).toBe(true);
      h.outbox.ack('cloud', before);
      await h.outbox.flush();
      await h.outbox.append('cloud', msg('t', '4'));
      const [after] = h.outbox.read('cloud', 0, 10);
      expect(after!.seq).toBeGreaterThan(before[2]!);
    });

    it('numbers messages 1, 2, 3 per source, independently per source and per bridge', async () => {
      const o = h.outbox;
      await Promise.all([
        o.append('cloud', msg('t', 'b1')),
        o.append('cloud', msg('t', 'd1', { origin: door })),
        o.append('cloud', msg('t', 'b2')),
        o.append('backup', msg('t', 'x1')),
        o.append('cloud', msg('t', 'd2', { origin: door })),
        o.append('cloud', msg('t', 's1', { origin: { kind: 'mqtt', id: 'boiler' } })), // same id, other kind
      ]);
      await o.append('cloud', msg('t', 'b3'));
      const seqs = o.read('cloud', 0, 10).map((e) => `${e.payload.toString()}:${e.sourceSeq}`);
      expect(seqs).toEqual(['b1:1', 'd1:1', 'b2:2', 'd2:2', 's1:1', 'b3:3']);
      expect(o.read('backup', 0, 10).map((e) => e.sourceSeq)).toEqual([1]);
    });

    it('keeps per-source numbers going after every row was acked', async () => {
      await h.outbox.append('cloud', msg('t', '1'));
      h.outbox.ack('cloud', [h.outbox.read('cloud', 0, 1)[0]!.seq]);
      await h.outbox.flush();
      await h.outbox.append('cloud', msg('t', '2'));
      expect(h.outbox.read('cloud', 0, 1)[0]!.sourceSeq).toBe(2);
    });

    it('keeps bridges apart: reads, acks and stats of one never touch another', async () => {
      await Promise.all([h.outbox.append('cloud', msg('t', 'c')), h.outbox.append('backup', msg('t', 'b'))]);
      const [b] = h.outbox.read('backup', 0, 10);
      h.outbox.ack('cloud', [b!.seq]); // wrong bridge: nothing happens
      await h.outbox.flush();
      expect(payloads(h.outbox, 'cloud')).toEqual(['c']);
      expect(payloads(h.outbox, 'backup')).toEqual(['b']);
      expect(h.outbox.stats('cloud').rows).toBe(1);
      expect(h.outbox.stats('nowhere')).toEqual({ rows: 0, bytes: 0, oldestCreatedAt: undefined, drops: {} });
    });

    it('commits 1000 appends made in one tick in one transaction', async () => {
      const before = h.outbox.commits;
      await Promise.all(Array.from({ length: 1000 }, (_, i) => h.outbox.append('cloud', msg('t', String(i)))));
      expect(h.outbox.commits - before).toBe(1);
      expect(h.outbox.stats('cloud').rows).toBe(1000);
    });

    it('resolves an append only after its commit, and reads see only committed rows', async () => {
      const before = h.outbox.commits;
      let resolved = false;
      const p = h.outbox.append('cloud', msg('t', 'x')).then(() => {
        resolved = true;
        expect(h.outbox.commits).toBe(before + 1);
      });
      expect(h.outbox.read('cloud', 0, 10)).toEqual([]);
      await Promise.resolve();
      expect(resolved).toBe(false);
      await p;
      expect(payloads(h.outbox, 'cloud')).toEqual(['x']);
    });

    it('reports rows, bytes (payload + topic + properties) and the oldest row', async () => {
      expect(h.outbox.stats('cloud').oldestCreatedAt).toBeUndefined();
      const t0 = clock.now();
      await h.outbox.append('cloud', msg('ab', '1234'));
      clock.advance(10);
      await h.outbox.append('cloud', msg('ab', '12', { properties: { contentType: 'x' } }));
      const props = Buffer.byteLength(JSON.stringify({ c: 'x' }));
      expect(h.outbox.stats('cloud')).toMatchObject({ rows: 2, bytes: 6 + 4 + props, oldestCreatedAt: t0 });
      h.outbox.ack('cloud', [h.outbox.read('cloud', 0, 1)[0]!.seq]);
      await h.outbox.flush();
      expect(h.outbox.stats('cloud')).toMatchObject({ rows: 1, bytes: 4 + props, oldestCreatedAt: t0 + 10 });
    });

    it('calls watchers after a commit that added rows for their bridge, with the rows readable', async () => {
      const seen: number[] = [];
      const off = h.outbox.watch('cloud', () => seen.push(h.outbox.read('cloud', 0, 100).length));
      h.outbox.watch('cloud', () => {
        throw new Error('a broken watcher does not break the commit');
      });
      await Promise.all([h.outbox.append('cloud', msg('t', '1')), h.outbox.append('cloud', msg('t', '2'))]);
      await h.outbox.append('backup', msg('t', 'other bridge'));
      h.outbox.ack('cloud', [h.outbox.read('cloud', 0, 1)[0]!.seq]);
      await h.outbox.flush();
      expect(seen).toEqual([2]);
      off();
      await h.outbox.append('cloud', msg('t', '3'));
      expect(seen).toEqual([2]);
    });

    it('commits an idle outbox on the next tick, then at most once per commit window', async () => {
      const w = await factory({ clock, commitWindowMs: 40 });
      try {
        const before = w.outbox.commits;
        const t0 = performance.now(); // before the first commit starts: a sure lower bound
        await w.outbox.append('cloud', msg('t', '1'));
        const b = w.outbox.append('cloud', msg('t', '2'));
        await new Promise((r) => setImmediate(r));
        const c = w.outbox.append('cloud', msg('t', '3')); // another tick, same window
        await Promise.all([b, c]);
        expect(performance.now() - t0).toBeGreaterThanOrEqual(38); // 40 ms less timer rounding
        expect(w.outbox.commits - before).toBe(2);
        expect(payloads(w.outbox, 'cloud')).toEqual(['1', '2', '3']);
      } finally {
        await w.close();
      }
    });

    it('commits pending appends on close, then refuses new ones', async () => {
      const p = h.outbox.append('cloud', msg('t', 'last'));
      await h.outbox.close();
      await expect(p).resolves.toBeUndefined();
      const err = await h.outbox.append('cloud', msg('t', 'late')).catch((e: unknown) => e);
      expect(isOutpostError(err, 'STORE_UNAVAILABLE')).toBe(true);
      expect(h.outbox.read('cloud', 0, 10)).toEqual([]);
      h.outbox.ack('cloud', [1]); // ignored, no throw
      await h.outbox.close(); // idempotent
    });

    outboxCapsContract(() => ({ h, clock }), factory);
  });
}
