/**
 * A sleeping sensor whose waking PINGREQ leaves out the ClientId (§5.4.19 makes it optional;
 * firmware written against a client library that sends an empty one does this) is still known
 * by its address, as for every other message. Before, the gateway answered PINGRESP at once,
 * delivered none of the buffered messages, and let the sleep timer run on: a sensor pinging
 * well within its Duration was declared lost and its Will published.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness;
let clock: FakeClock;
beforeEach(async () => {
  clock = new FakeClock();
  h = await startSnGateway('retry_interval: 1s\nmax_retries: 2', { clock });
});
afterEach(async () => h.close());

const state = (id: string) => h.gw.session(id)?.state;

async function sleeper(id: string) {
  const c = await h.client();
  await c.connect(id, { clean: false, duration: 30, will: { topic: `wills/${id}`, payload: 'lost' } });
  await c.subscribe('to/#', 1);
  c.send({ type: MsgType.DISCONNECT, duration: 60 });
  await c.next(MsgType.DISCONNECT);
  expect(state(id)).toBe('asleep');
  return c;
}

describe('MQTT-SN sleepers that wake with a PINGREQ without ClientId (§6.14)', () => {
  it('wakes the sleeper at that address: buffered messages first, PINGRESP once they are acknowledged', async () => {
    const c = await sleeper('no-id');
    await h.local('to/a', 'while-asleep', 1);
    c.send({ type: MsgType.PINGREQ, clientId: undefined });
    const reg = await c.next(MsgType.REGISTER);
    expect(reg.topicName).toBe('to/a');
    c.send({ type: MsgType.REGACK, topicId: reg.topicId, msgId: reg.msgId, returnCode: 0 });
    const p = await c.next(MsgType.PUBLISH);
    expect(p.payload.toString()).toBe('while-asleep');
    expect(await c.none(MsgType.PINGRESP, 100)).toBe(true);
    c.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    await c.next(MsgType.PINGRESP);
    expect(state('no-id')).toBe('asleep');
  });

  it('does not lose a sleeper that pings without its ClientId within its Duration, nor publish its Will', async () => {
    const wills = h.watch('wills/#');
    const c = await sleeper('pinger');
    for (let i = 0; i < 4; i++) {
      clock.advance(50_000); // within the 60 s Duration (90 s with grace), 200 s in all
      c.send({ type: MsgType.PINGREQ, clientId: undefined });
      await c.next(MsgType.PINGRESP);
      await until(() => state('pinger') === 'asleep', 'asleep again');
    }
    expect(wills).toEqual([]);
    // Silent for longer than its Duration, it is lost as before.
    clock.advance(91_000);
    expect(state('pinger')).toBe('lost');
    expect(wills.map((m) => m.payload.toString())).toEqual(['lost']);
  });
});

describe('MQTT-SN sleepers that publish without waking first', () => {
  it('does not lose a sleeper whose PUBLISHes come within its Duration: any message from it counts, as in the other states', async () => {
    const wills = h.watch('wills/#');
    const c = await sleeper('reporter');
    const { topicId } = await c.register('data/reporter');
    for (let i = 0; i < 4; i++) {
      clock.advance(50_000); // within the 60 s Duration (90 s with grace), 200 s in all
      const msgId = c.publish(topicId, `${i}`, { qos: 1 });
      expect((await c.next(MsgType.PUBACK, 2000, (p) => p.msgId === msgId)).returnCode).toBe(0);
      expect(state('reporter')).toBe('asleep');
    }
    expect(wills).toEqual([]);
    clock.advance(91_000);
    expect(state('reporter')).toBe('lost');
    expect(wills.map((m) => m.payload.toString())).toEqual(['lost']);
  });
});
