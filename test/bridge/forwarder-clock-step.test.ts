/**
 * Rows the forwarder read before a step of the wall clock (in flight, or buffered) keep
 * their remaining Message Expiry: a resend after the step carries what is left, not 1 s.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../src/bridge/forwarder.js';
import type { UpstreamPublish } from '../../src/bridge/upstream.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

const log = pino({ level: 'silent' });
let outbox: MemoryOutbox | undefined;
afterEach(async () => {
  await outbox?.close();
  outbox = undefined;
});

describe('the forwarder across a step of the wall clock', () => {
  it('resends an in-flight row after a step of +1 day with the Message Expiry it has left', async () => {
    const wall = new SteppingWall();
    outbox = new MemoryOutbox({ clock: wall.clock, log, commitWindowMs: 0 });
    outbox.configure('cloud', { maxBytes: 1 << 30, maxRows: 1000, maxAgeMs: DAY / 2, whenFull: 'drop-oldest' });
    await outbox.append('cloud', { topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p' }, expiresAt: wall.clock.now() + 600_000 });
    const sent: UpstreamPublish[] = [];
    const fwd = new Forwarder({ bridge: 'cloud', inflight: 10, identity: 'none' }, outbox, { publish: (p) => (sent.push(p), true) }, wall.clock, log);
    const o = outbox;
    wall.clock.onStep((d) => {
      o.clockStepped(d);
      fwd.clockStepped(d);
    });
    fwd.onUp({ sessionPresent: false, receiveMaximum: 10, maximumPacketSize: undefined, topicAliasMaximum: 0 });
    expect(sent.map((p) => p.properties?.messageExpiryInterval)).toEqual([600]);
    fwd.onDown();
    wall.advance(100_000);
    wall.step(DAY);
    fwd.onUp({ sessionPresent: true, receiveMaximum: 10, maximumPacketSize: undefined, topicAliasMaximum: 0 });
    expect(sent.map((p) => [p.dup, p.properties?.messageExpiryInterval])).toEqual([[false, 600], [true, 500]]);
  });
});
