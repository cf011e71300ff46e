/**
 * The drain budget (issue 4: "an optional rate budget (msgs/s, bytes/s)") is a token bucket
 * of one second's worth that refills with time only: reconnecting does not hand out a fresh
 * bucket, so a flapping metered link cannot overspend it.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../src/bridge/forwarder.js';
import type { UpstreamPublish } from '../../src/bridge/upstream.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import { FakeClock } from '../helpers/fake-clock.js';

const log = pino({ level: 'silent' });
const session = { sessionPresent: false, receiveMaximum: 65_535, maximumPacketSize: undefined, topicAliasMaximum: 0 };
let outbox: MemoryOutbox | undefined;
afterEach(async () => {
  await outbox?.close();
  outbox = undefined;
});

async function setup(rate: { msgsPerSec?: number; bytesPerSec?: number }) {
  const clock = new FakeClock();
  outbox = new MemoryOutbox({ clock, log, commitWindowMs: 0 });
  outbox.configure('cloud', { maxBytes: 1 << 30, maxRows: 1_000_000, maxAgeMs: 86_400_000, whenFull: 'drop-oldest' });
  for (let i = 1; i <= 100; i++) {
    await outbox.append('cloud', { topic: 't', payload: Buffer.from(String(i)), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p' } });
  }
  const sent: UpstreamPublish[] = [];
  const fwd = new Forwarder({ bridge: 'cloud', inflight: 1000, identity: 'none', rate }, outbox, { publish: (p) => (sent.push(p), true) }, clock, log);
  const ackAll = () => {
    for (const p of sent.splice(0)) if (!p.dup) fwd.onAcked(p.packetId, 0);
  };
  return { clock, fwd, sent, ackAll };
}

describe('the forwarder rate budget', () => {
  it('sends one second of budget at once, then refills with time, not with reconnects', async () => {
    const { clock, fwd, sent, ackAll } = await setup({ msgsPerSec: 10 });
    fwd.onUp(session);
    expect(sent).toHaveLength(10);
    ackAll();
    for (let i = 0; i < 5; i++) {
      fwd.onDown();
      fwd.onUp(session);
    }
    expect(sent).toHaveLength(0); // five reconnects, no new budget
    clock.advance(500);
    expect(sent.length).toBe(5);
    ackAll();
    clock.advance(500);
    expect(sent.length).toBe(5);
  });

  it('refills to at most one second of budget during an outage', async () => {
    const { clock, fwd, sent, ackAll } = await setup({ msgsPerSec: 10 });
    fwd.onUp(session);
    ackAll();
    fwd.onDown();
    clock.advance(60_000);
    fwd.onUp(session);
    expect(sent).toHaveLength(10);
  });
});
