/**
 * The forwarder's two limits: the cloud's Receive Maximum caps the rows it has not
 * acknowledged; our inflight window caps every row sent and not yet deleted (acknowledged
 * rows whose delete waits for the commit count too), which bounds what a crash sends again.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../src/bridge/forwarder.js';
import type { UpstreamPublish } from '../../src/bridge/upstream.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
let outbox: MemoryOutbox | undefined;
afterEach(async () => {
  await outbox?.close();
  outbox = undefined;
});

async function setup(inflight: number, receiveMaximum: number) {
  const clock = new FakeClock();
  // Deletes of acknowledged rows may wait 10 s for a commit unless somebody asks for one.
  outbox = new MemoryOutbox({ clock, log, commitWindowMs: 0, commitDelayMs: 10_000 });
  outbox.configure('cloud', { maxBytes: 1 << 30, maxRows: 1_000_000, maxAgeMs: 86_400_000, whenFull: 'drop-oldest' });
  for (let i = 1; i <= 20; i++) {
    await outbox.flush();
    void outbox.append('cloud', { topic: 't', payload: Buffer.from(String(i)), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p' } });
  }
  await outbox.flush();
  const sent: UpstreamPublish[] = [];
  let unacked = 0;
  let mostUnacked = 0;
  const fwd = new Forwarder({ bridge: 'cloud', inflight, identity: 'none' }, outbox, {
    publish: (p) => {
      sent.push(p);
      mostUnacked = Math.max(mostUnacked, ++unacked);
      return true;
    },
  }, clock, log);
  fwd.onUp({ sessionPresent: false, receiveMaximum, maximumPacketSize: undefined, topicAliasMaximum: 0 });
  /** The cloud acknowledges everything sent so far, round after round, while rows keep coming without a commit. */
  const ackRounds = (rounds: number): void => {
    for (let r = 0; r < rounds; r++) {
      const batch = sent.splice(0);
      if (batch.length === 0) return;
      for (const p of batch) {
        unacked--;
        fwd.onAcked(p.packetId, 0);
      }
      seen.push(...batch.map((p) => String(p.payload)));
    }
  };
  const seen: string[] = [];
  return { outbox, ackRounds, seen, sent, mostUnacked: () => mostUnacked };
}

describe('the forwarder window', () => {
  it('keeps at most Receive Maximum rows unacknowledged, yet does not commit the deletes each time that many were acknowledged', async () => {
    const { outbox, ackRounds, seen, mostUnacked } = await setup(6, 2);
    const commits = outbox.commits;
    ackRounds(10);
    // Three rounds of two: our window of 6 is full of acknowledged rows before a commit is due.
    expect(seen).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(outbox.commits).toBe(commits);
    expect(mostUnacked()).toBe(2);
  });

  it('asks for the commit of the deletes once acknowledged rows fill our window, and goes on after it', async () => {
    const { outbox, ackRounds, seen, sent } = await setup(6, 2);
    ackRounds(10);
    expect(sent).toHaveLength(0);
    expect(outbox.stats('cloud').rows).toBe(20); // nothing deleted yet: a crash now sends again 6 rows at most
    await new Promise((r) => setTimeout(r, 20)); // the commit asked for runs (real timers)
    expect(outbox.stats('cloud').rows).toBe(14);
    ackRounds(10);
    expect(seen.slice(6)).toEqual(['7', '8', '9', '10', '11', '12']);
  });
});
