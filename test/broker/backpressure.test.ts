/**
 * A subscriber that stops reading must cost the broker a bounded amount of memory and
 * must not slow anyone else down: what does not fit its socket buffer and its queue
 * (max_queued_messages / max_queued_bytes) is dropped and counted.
 */
import { duplexPair, type Duplex } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { IPublishPacket } from 'mqtt-packet';
import type { Message } from '../../src/core/message.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import { RawClient } from '../helpers/raw-client.js';
import { subscribe, until } from '../helpers/flows.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const PAYLOAD = 1024;
const limits: Partial<BrokerOptions> = { maxQueuedMessages: 200, maxQueuedBytes: 128 * 1024, maxInflight: 50, socketHighWater: 256 * 1024 };

/** A client whose broker-side stream the test can inspect. */
function clientWithBrokerSide(harness: Harness, port: number): { c: RawClient; brokerSide: Duplex } {
  const [a, b] = duplexPair();
  a.once('close', () => b.destroy());
  b.once('close', () => a.destroy());
  harness.broker.handle(b, { transport: 'memory', remoteAddress: '10.0.0.2', remotePort: port });
  return { c: new RawClient(a, 5), brokerSide: b };
}

function message(seq: number, qos: 0 | 1): Message {
  const payload = Buffer.alloc(PAYLOAD, 0x2e); // unpooled: retention shows in arrayBuffers
  payload.writeUInt32BE(seq, 0);
  return { topic: 'firehose', payload, qos, retain: false, origin: { kind: 'serial', id: 'dev' } };
}

const seqOf = (p: IPublishPacket) => (p.payload as Buffer).readUInt32BE(0);

/** Counts PUBLISHes as they arrive (acking QoS 1) without keeping them. */
function counter(c: RawClient) {
  const state = { count: 0, lastSeq: -1, inOrder: true };
  void (async () => {
    for (;;) {
      let p: IPublishPacket;
      try {
        p = await c.next('publish', 60_000);
      } catch {
        return;
      }
      if (p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId });
      const seq = seqOf(p);
      if (seq <= state.lastSeq) state.inOrder = false;
      state.lastSeq = seq;
      state.count++;
    }
  })();
  return state;
}

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function firehose(harness: Harness, total: number, qos: 0 | 1, healthy: { count: number }): Promise<void> {
  for (let sent = 0; sent < total; ) {
    for (let i = 0; i < 50 && sent < total; i++) harness.broker.publish(message(sent++, qos));
    // Pace the publisher to the healthy subscriber (as QoS 1 flow control would), never to the frozen one.
    await until(() => healthy.count >= sent - 100, `healthy subscriber to keep up at ${sent}`, 5000);
    await new Promise((r) => setImmediate(r));
  }
}

describe('a subscriber that stops reading', () => {
  it.each([0, 1] as const)('with QoS %i traffic stays bounded in memory, drops the overflow as queue-full and does not hold back a healthy subscriber', async (qos) => {
    h = startBroker(limits);
    const frozen = clientWithBrokerSide(h, 1);
    await frozen.c.connect({ clientId: 'frozen', protocolVersion: 5 });
    await subscribe(frozen.c, 'firehose', 1);
    frozen.c.stream.pause(); // stops reading: what the broker writes piles up

    const healthyClient = h.client(5);
    await healthyClient.connect({ clientId: 'healthy' });
    await subscribe(healthyClient, 'firehose', 1);
    const healthy = counter(healthyClient);

    const total = 20_000; // 20 MiB of payload
    const before = retainedBytes();
    await firehose(h, total, qos, healthy);
    await until(() => healthy.count === total, 'healthy subscriber to get everything', 5000);
    expect(healthy.inOrder).toBe(true);

    // What the broker holds for the frozen client: its socket buffer and its queue, both capped.
    expect(frozen.brokerSide.writableLength).toBeLessThanOrEqual(limits.socketHighWater! + 64 * 1024);
    const grown = retainedBytes() - before;
    expect(grown).toBeLessThan(8 * 1024 * 1024); // far below the 20 MiB that went through
    const dropped = h.broker.metrics.drops.get('queue-full') ?? 0;
    expect(dropped).toBeGreaterThan(total - 1000);

    // Reading again: it gets what was kept, oldest first, and nothing else went missing uncounted.
    const recovered = counter(frozen.c);
    frozen.c.stream.resume();
    await until(() => recovered.count + dropped === total, `frozen client to drain (${recovered.count} + ${dropped} dropped of ${total})`, 5000);
    expect(recovered.inOrder).toBe(true);
    expect(recovered.count).toBeGreaterThan(0);
    expect(h.broker.metrics.drops.get('queue-full')).toBe(dropped);
  });

  it('never queues more than max_queued_bytes for it even when the messages are large', async () => {
    h = startBroker({ maxQueuedMessages: 100_000, maxQueuedBytes: 256 * 1024, socketHighWater: 64 * 1024 });
    const frozen = clientWithBrokerSide(h, 1);
    await frozen.c.connect({ clientId: 'frozen', protocolVersion: 5 });
    await subscribe(frozen.c, 'big', 0);
    frozen.c.stream.pause();
    const before = retainedBytes();
    for (let i = 0; i < 200; i++) {
      h.broker.publish({ topic: 'big', payload: Buffer.alloc(64 * 1024, i), qos: 0, retain: false, origin: { kind: 'serial', id: 'cam' } });
      await new Promise((r) => setImmediate(r));
    }
    const grown = retainedBytes() - before;
    // 12.5 MiB published; at most the queue (256 KiB) plus the socket buffers are kept.
    expect(grown).toBeLessThan(3 * 1024 * 1024);
    expect(h.broker.metrics.drops.get('queue-full')).toBeGreaterThan(150);
  });
});
