/**
 * The PUBACK to a sensor waits until every durable sink (the bridge outbox) committed the
 * message (DESIGN §4): a gateway that acknowledges before the commit can lose a message the
 * sensor believes delivered.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DurableSink } from '../../src/core/bus.js';
import type { Message } from '../../src/core/message.js';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

class HeldSink implements DurableSink {
  readonly name = 'held';
  readonly pending: { msg: Message; resolve: () => void; reject: (e: Error) => void }[] = [];
  selects(msg: Message): boolean {
    return msg.topic.startsWith('bridged/');
  }
  accept(msg: Message): Promise<void> {
    return new Promise((resolve, reject) => this.pending.push({ msg, resolve, reject }));
  }
}

let h: SnHarness;
let sink: HeldSink;
beforeEach(async () => {
  h = await startSnGateway();
  sink = new HeldSink();
  h.broker.addDurableSink(sink);
});
afterEach(async () => h.close());

describe('MQTT-SN acknowledgements wait for the durable commit', () => {
  it('sends PUBACK for QoS 1 only after the sink committed the message', async () => {
    const c = await h.client();
    await c.connect('dur');
    const { topicId } = await c.register('bridged/temp');
    c.publish(topicId, '20', { qos: 1 });
    await until(() => sink.pending.length === 1, 'the sink to receive the message');
    expect(await c.none(MsgType.PUBACK, 150)).toBe(true);
    sink.pending[0]!.resolve();
    expect((await c.next(MsgType.PUBACK)).returnCode).toBe(ReturnCode.ACCEPTED);
  });

  it('sends PUBREC for QoS 2 only after the commit', async () => {
    const c = await h.client();
    await c.connect('dur2');
    const { topicId } = await c.register('bridged/q2');
    const msgId = c.publish(topicId, 'x', { qos: 2 });
    await until(() => sink.pending.length === 1, 'the sink');
    expect(await c.none(MsgType.PUBREC, 150)).toBe(true);
    sink.pending[0]!.resolve();
    expect((await c.next(MsgType.PUBREC)).msgId).toBe(msgId);
  });

  it('answers a refused commit with PUBACK 0x01 (congestion) so the sensor retries', async () => {
    const c = await h.client();
    await c.connect('dur3');
    const { topicId } = await c.register('bridged/full');
    c.publish(topicId, 'x', { qos: 1 });
    await until(() => sink.pending.length === 1, 'the sink');
    sink.pending[0]!.reject(new Error('outbox full'));
    expect((await c.next(MsgType.PUBACK)).returnCode).toBe(ReturnCode.CONGESTION);
  });

  it('does not publish a DUP retransmission twice while the first is still committing', async () => {
    const c = await h.client();
    await c.connect('dur4');
    const { topicId } = await c.register('bridged/dup');
    const msgId = c.publish(topicId, 'x', { qos: 1 });
    await until(() => sink.pending.length === 1, 'the sink');
    c.publish(topicId, 'x', { qos: 1, msgId, dup: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.pending).toHaveLength(1);
    sink.pending[0]!.resolve();
    await c.next(MsgType.PUBACK);
  });
});
