/**
 * Progress probes: a component whose loop no longer turns is stuck; one that waits for a
 * good reason (an uplink outage with backoff, a full window) is not, however long it waits.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../src/bridge/forwarder.js';
import type { UpstreamPublish } from '../../src/bridge/upstream.js';
import { ProgressMonitor, type ProgressProbe } from '../../src/core/progress.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
const session = { sessionPresent: false, receiveMaximum: 65_535, maximumPacketSize: undefined, topicAliasMaximum: 0 };
let outbox: MemoryOutbox | undefined;
afterEach(async () => {
  await outbox?.close();
  outbox = undefined;
});

const append = (o: MemoryOutbox, n: number) =>
  Promise.all(Array.from({ length: n }, (_, i) => o.append('cloud', { topic: 't', payload: Buffer.from(String(i)), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p' } })));

async function forwarder(inflight = 10) {
  const clock = new FakeClock();
  outbox = new MemoryOutbox({ clock, log, commitWindowMs: 0 });
  outbox.configure('cloud', { maxBytes: 1 << 30, maxRows: 1_000_000, maxAgeMs: 86_400_000, whenFull: 'drop-oldest' });
  const sent: UpstreamPublish[] = [];
  const fwd = new Forwarder({ bridge: 'cloud', inflight, identity: 'none' }, outbox, { publish: (p) => (sent.push(p), true) }, clock, log);
  const monitor = new ProgressMonitor(30_000, clock);
  monitor.watch(() => [{ name: 'bridge cloud forwarder', waitingSince: () => fwd.waitingSince() }]);
  return { clock, fwd, sent, monitor, outbox };
}

describe('progress monitor', () => {
  it('calls a component stuck only after work waited the whole grace period from when it was first seen', () => {
    const clock = new FakeClock();
    let since: number | undefined;
    const probe: ProgressProbe = { name: 'x', waitingSince: () => since };
    const m = new ProgressMonitor(1000, clock);
    m.watch(() => [probe]);
    expect(m.stuck()).toEqual([]);
    since = clock.now() - 3_600_000; // idle for an hour, then work arrived and nothing turned
    expect(m.stuck()).toEqual([]); // first seen now: the full grace period starts here
    clock.advance(999);
    expect(m.stuck()).toEqual([]);
    clock.advance(1);
    expect(m.stuck()).toEqual([{ name: 'x', forMs: 1000 }]);
    since = undefined; // it turned
    expect(m.stuck()).toEqual([]);
  });

  it('treats a probe that throws as a component that cannot vouch for itself', () => {
    const clock = new FakeClock();
    const m = new ProgressMonitor(500, clock);
    m.watch(() => [{ name: 'broken', waitingSince: () => { throw new Error('bug'); } }]);
    expect(m.stuck()).toEqual([]);
    clock.advance(500);
    expect(m.stuck().map((s) => s.name)).toEqual(['broken']);
  });
});

describe('bridge forwarder progress', () => {
  it('is stuck when rows wait, the link is up and the drain loop no longer turns', async () => {
    const { clock, fwd, sent, monitor, outbox } = await forwarder();
    fwd.onUp(session);
    // Rows committed, but the forwarder is never woken (a lost watch: its loop stopped turning).
    await append(outbox, 3);
    expect(sent).toHaveLength(0);
    expect(monitor.stuck()).toEqual([]);
    clock.advance(30_000);
    expect(monitor.stuck().map((s) => s.name)).toEqual(['bridge cloud forwarder']);
    fwd.onCommitted(); // the loop turns again: the rows go out
    expect(sent).toHaveLength(3);
    expect(monitor.stuck()).toEqual([]);
  });

  it('is healthy during an uplink outage with backoff, however long the backlog waits', async () => {
    const { clock, fwd, monitor, outbox } = await forwarder();
    await append(outbox, 5);
    fwd.onUp(session);
    fwd.onDown(); // the uplink went away: the upstream client backs off and retries
    for (let i = 0; i < 10; i++) {
      clock.advance(60_000);
      expect(monitor.stuck()).toEqual([]);
    }
  });

  it('is healthy while its window is full and it waits for the cloud to acknowledge', async () => {
    const { clock, fwd, sent, monitor, outbox } = await forwarder(2);
    await append(outbox, 5);
    fwd.onUp(session);
    expect(sent).toHaveLength(2);
    clock.advance(120_000);
    expect(monitor.stuck()).toEqual([]);
    expect(monitor.stuck()).toEqual([]);
  });
});

describe('bridge link progress', () => {
  it('is waiting, not stuck, while the cloud is unreachable and reconnects back off; idle once stopped', async () => {
    const { makeClient } = await import('../helpers/upstream-harness.js');
    const { freePort } = await import('../helpers/gateway-fixture.js');
    const port = await freePort(); // nothing listens: every attempt is refused
    const { client, rec } = makeClient({ url: `mqtt://127.0.0.1:${port}`, backoff: { baseMs: 50, capMs: 100 } });
    const monitor = new ProgressMonitor(100, { now: () => Date.now() });
    monitor.watch(() => [{ name: 'bridge cloud link', waitingSince: () => client.waitingSince() }]);
    expect(client.waitingSince()).toBeUndefined(); // not started
    await client.start(new AbortController().signal);
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      expect(monitor.stuck()).toEqual([]);
    }
    expect(rec.warnings().length).toBeGreaterThan(0); // it did fail and retry meanwhile
    await client.stop();
    expect(client.waitingSince()).toBeUndefined();
  });
});
