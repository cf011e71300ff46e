import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type Harness } from '../helpers/broker-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A durable sink whose commits the test releases by hand. */
function heldSink() {
  const held: (() => void)[] = [];
  return {
    held,
    sink: { name: 'held', selects: () => true, accept: () => new Promise<void>((resolve) => held.push(resolve)) },
    releaseAll: () => held.splice(0).forEach((r) => r()),
  };
}

describe('inbound flow control', () => {
  it('slows a 3.1.1 publisher past Receive Maximum instead of cutting it off, and acks all in order', async () => {
    h = startBroker({ receiveMaximum: 2 });
    const s = heldSink();
    h.broker.addDurableSink(s.sink);
    const pub = h.client(4);
    await pub.connect({ clientId: 'p311' });
    for (let id = 1; id <= 6; id++) {
      pub.send({ cmd: 'publish', topic: 't', payload: Buffer.from(String(id)), qos: 1, messageId: id, dup: false, retain: false });
    }
    await pub.settle(50);
    expect(pub.closed).toBe(false);
    expect(pub.received.filter((p) => p.cmd === 'puback')).toHaveLength(0);
    // Release commits until every publish was read and acknowledged.
    const acked: number[] = [];
    for (let round = 0; round < 10 && acked.length < 6; round++) {
      s.releaseAll();
      await pub.settle(20);
      for (const p of pub.received.splice(0)) if (p.cmd === 'puback') acked.push(p.messageId!);
    }
    expect(acked).toEqual([1, 2, 3, 4, 5, 6]);
    expect(pub.closed).toBe(false);
  });

  it('cuts off a v5 publisher that exceeds the Receive Maximum it was told, with 0x93 [MQTT-3.3.4-9]', async () => {
    h = startBroker({ receiveMaximum: 2 });
    const s = heldSink();
    h.broker.addDurableSink(s.sink);
    const pub = h.client(5);
    const ack = await pub.connect({ clientId: 'p5' });
    expect(ack.properties?.receiveMaximum).toBe(2);
    for (let id = 1; id <= 3; id++) {
      pub.send({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: id, dup: false, retain: false });
    }
    const d = await pub.next('disconnect');
    expect(d.reasonCode).toBe(0x93);
    await pub.waitClosed();
  });
});
