/**
 * store.commit_delay with real peers (MQTT.js over TCP, MQTT-SN datagrams over UDP) and a
 * bridge that buffers into the outbox: a new publisher and one that waits for each PUBACK
 * are answered at once; the PUBACK of one that publishes on a period (a sleeping sensor
 * too) may be held for the delay, so that many such readings share one commit.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { freePort } from '../helpers/free-port.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';
import { runOutpost, type OpsRun } from '../helpers/ops-run.js';

const DELAY_MS = 800;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function gateway(): Promise<OpsRun> {
  const cloud = await freePort(); // nothing listens there: the bridge buffers everything
  const run = await runOutpost(
    [
      'metrics: { port: 0 }',
      'mqttsn: { hosts: [127.0.0.1], port: 0, advertise: { interval: 0 } }',
      `bridges: [{ name: cloud, url: "mqtt://127.0.0.1:${cloud}", rules: [{ pattern: "sensors/#" }], backoff: { base: 5s, cap: 5s } }]`,
      '',
    ].join('\n'),
    {},
    `commit_delay: ${DELAY_MS}ms`,
  );
  cleanups.push(() => run.stop());
  return run;
}

async function timed(p: Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
}

describe('store.commit_delay with real publishers', () => {
  it('answers a new MQTT publisher at once and one that waits for each PUBACK at once, and holds the PUBACK of a periodic one', async () => {
    const run = await gateway();
    const connect = async (): Promise<MqttClient> => {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${run.port}`, { clientId: 'meter', reconnectPeriod: 0, clean: true });
      cleanups.push(() => c.endAsync(true));
      return c;
    };
    const c = await connect();
    expect(await timed(c.publishAsync('sensors/meter', 'first', { qos: 1 }))).toBeLessThan(DELAY_MS / 2);
    // Sequential: each publish right after the previous PUBACK. Held, 20 would take 16 s.
    expect(await timed((async () => { for (let i = 0; i < 20; i++) await c.publishAsync('sensors/meter', `seq ${i}`, { qos: 1 }); })())).toBeLessThan(20 * DELAY_MS / 4);
    await sleep(DELAY_MS + 300); // now it looks like a meter reporting on a period
    expect(await timed(c.publishAsync('sensors/meter', 'periodic', { qos: 1 }))).toBeGreaterThanOrEqual(DELAY_MS / 2);
    // Sequential again: after one held PUBACK it is recognised as waiting.
    await c.publishAsync('sensors/meter', 'again', { qos: 1 });
    expect(await timed(c.publishAsync('sensors/meter', 'again 2', { qos: 1 }))).toBeLessThan(DELAY_MS / 2);
  });

  it('answers a new MQTT-SN sensor at once, and holds the PUBACK of one that wakes from sleep on a period', async () => {
    const run = await gateway();
    const sn = await SnTestClient.open({ port: run.gateway.mqttsn!.addresses[0]!.port });
    cleanups.push(() => sn.close());
    expect(await sn.connect('sn-meter', { duration: 60 })).toBe(0);
    const { topicId } = await sn.register('sensors/sn-meter');
    const publish = async (payload: string): Promise<number> =>
      timed((async () => {
        const msgId = sn.publish(topicId, payload, { qos: 1 });
        const ack = await sn.next(MsgType.PUBACK, 5000, (p) => p.msgId === msgId);
        expect(ack.returnCode).toBe(0);
      })());
    expect(await publish('first')).toBeLessThan(DELAY_MS / 2);
    await sleep(DELAY_MS + 300);
    expect(await publish('periodic')).toBeGreaterThanOrEqual(DELAY_MS / 2);
    await sleep(DELAY_MS + 300);
    sn.send({ type: MsgType.DISCONNECT, duration: 60 }); // asleep (§6.14)
    await sn.next(MsgType.DISCONNECT, 5000);
    await sleep(DELAY_MS + 300);
    expect(await sn.connect('sn-meter', { duration: 60, clean: false })).toBe(0); // awake again
    expect(await publish('after wake')).toBeGreaterThanOrEqual(DELAY_MS / 2);
  });
});
