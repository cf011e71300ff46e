/**
 * Rows of QoS 1/2 rules towards a cloud that takes QoS 0 only (Maximum QoS 0) go at QoS 0 and
 * are deleted only once the cloud answered a PINGREQ sent after them (Upstream.barrier and
 * `passed`): never on the write alone. The forwarder against an in-memory outbox and a
 * recording upstream; the real cloud is in test/e2e/bridge-311-qos0-cloud.test.ts.
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

async function setup(inflight: number, rows: number) {
  const clock = new FakeClock();
  outbox = new MemoryOutbox({ clock, log, commitWindowMs: 0, commitDelayMs: 0 });
  outbox.configure('cloud', { maxBytes: 1 << 30, maxRows: 1_000_000, maxAgeMs: 86_400_000, whenFull: 'drop-oldest' });
  for (let i = 1; i <= rows; i++) void outbox.append('cloud', { topic: 't', payload: Buffer.from(String(i)), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p' } });
  await outbox.flush();
  /** What went out, in order: a publish (payload@qos) or a PINGREQ (ping#n). */
  const wire: string[] = [];
  let pings = 0;
  const fwd = new Forwarder({ bridge: 'cloud', inflight, identity: 'none' }, outbox, {
    publish: (p: UpstreamPublish) => {
      wire.push(`${p.payload.toString()}@${p.qos}`);
      return true;
    },
    barrier: () => {
      wire.push(`ping#${++pings}`);
      return pings;
    },
  }, clock, log);
  const up = () => {
    pings = 0; // numbers start again on each connection
    fwd.onUp({ sessionPresent: false, receiveMaximum: 20, maximumPacketSize: undefined, topicAliasMaximum: 0, maximumQoS: 0 });
  };
  const settle = async () => {
    await outbox!.flush();
    await new Promise((r) => setTimeout(r, 5));
  };
  return { outbox, fwd, wire, up, settle };
}

describe('rows sent at QoS 0 to a cloud with Maximum QoS 0', () => {
  it('go out at QoS 0 followed by one PINGREQ, and stay in the outbox until that PINGREQ is answered', async () => {
    const { outbox, fwd, wire, up, settle } = await setup(10, 3);
    up();
    expect(wire).toEqual(['1@0', '2@0', '3@0', 'ping#1']);
    await settle();
    expect(outbox.stats('cloud').rows).toBe(3); // written, not acknowledged
    fwd.onPassed(1);
    await settle();
    expect(outbox.stats('cloud').rows).toBe(0);
  });

  it('are sent again, in order, after a link lost before the answer, and an answer to a PINGREQ sent before some rows releases only the rows before it', async () => {
    const { outbox, fwd, wire, up, settle } = await setup(10, 3);
    up();
    fwd.onDown();
    up();
    expect(wire).toEqual(['1@0', '2@0', '3@0', 'ping#1', '1@0', '2@0', '3@0', 'ping#1']);
    void outbox.append('cloud', { topic: 't', payload: Buffer.from('4'), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p' } });
    await outbox.flush();
    fwd.onCommitted();
    expect(wire.slice(8)).toEqual(['4@0', 'ping#2']);
    fwd.onPassed(1);
    await settle();
    expect(outbox.read('cloud', 0, 10).map((r) => r.payload.toString())).toEqual(['4']);
    fwd.onPassed(2);
    await settle();
    expect(outbox.stats('cloud').rows).toBe(0);
  });

  it('count in the inflight window until they are confirmed', async () => {
    const { fwd, wire, up, settle } = await setup(2, 5);
    up();
    expect(wire).toEqual(['1@0', '2@0', 'ping#1']);
    fwd.onPassed(1);
    await settle();
    expect(wire.slice(3)).toEqual(['3@0', '4@0', 'ping#2']);
  });
});
