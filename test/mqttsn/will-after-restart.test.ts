/**
 * The Will of a persistent MQTT-SN client across a restart of the gateway
 * (src/mqttsn/persistence.ts): a sensor connected (or asleep) when the gateway went down
 * still owes its Will; if it does not CONNECT again within 1.5× its Keep Alive (or its
 * sleep Duration, the longer) of the restart, it is lost and the Will goes out, once.
 * A sensor that had DISCONNECTed owes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { MsgType } from '../../src/mqttsn/packets.js';
import { MemorySnSessionStore } from '../../src/mqttsn/persistence.js';
import { silentLog } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import type { SnTestClient } from '../helpers/mqttsn-client.js';
import { startSnGateway, type SnHarness } from '../helpers/mqttsn-gateway.js';

const YAML = 'retry_interval: 1s\nmax_retries: 2\nsession_expiry: 1h';
const WILL = { topic: 'status/pump-4', payload: 'offline', qos: 1 as const, retain: true };
const harnesses: SnHarness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0).reverse()) await h.close().catch(() => undefined);
});

/** A gateway on `store` with its own clock (a restarted process starts its timers afresh). */
async function gateway(store: MemorySnSessionStore, broker: Broker, extraYaml = ''): Promise<{ h: SnHarness; clock: FakeClock }> {
  const clock = new FakeClock();
  const h = await startSnGateway(`${YAML}\n${extraYaml}`, { store, broker, clock });
  harnesses.push(h);
  return { h, clock };
}

async function stop(h: SnHarness, ...clients: SnTestClient[]): Promise<void> {
  for (const c of clients) await c.close();
  await h.gw.stop();
  harnesses.splice(harnesses.indexOf(h), 1);
}

function setup(): { store: MemorySnSessionStore; broker: Broker; wills: string[] } {
  const store = new MemorySnSessionStore();
  const broker = new Broker({}, { log: silentLog });
  const wills: string[] = [];
  broker.subscribe('status/#', { kind: 'system', id: 'dashboard' }, { qos: 1 }, (m) => wills.push(`${m.topic} ${m.payload.toString()}`));
  return { store, broker, wills };
}

describe('the Will of a persistent MQTT-SN client across a gateway restart', () => {
  it('publishes the Will of a sensor that was connected at the stop and is not back within 1.5 × its Keep Alive, and only once', async () => {
    const { store, broker, wills } = setup();
    const first = await gateway(store, broker);
    const c = await first.h.client();
    expect(await c.connect('pump-4', { clean: false, duration: 10, will: WILL })).toBe(0);
    await stop(first.h, c);

    const second = await gateway(store, broker);
    second.clock.advance(14_900);
    expect(wills).toEqual([]);
    second.clock.advance(200);
    expect(wills).toEqual(['status/pump-4 offline']);
    expect(second.h.gw.session('pump-4')?.state).toBe('lost');
    await stop(second.h);

    // The loss is stored: a further restart does not publish the Will again.
    const third = await gateway(store, broker);
    third.clock.advance(600_000);
    expect(wills).toEqual(['status/pump-4 offline']);
    expect(third.h.gw.session('pump-4')?.state).toBe('disconnected');
  });

  it('publishes no Will for a sensor that CONNECTs again in time', async () => {
    const { store, broker, wills } = setup();
    const first = await gateway(store, broker);
    const c1 = await first.h.client();
    await c1.connect('pump-4', { clean: false, duration: 10, will: WILL });
    await stop(first.h, c1);

    const second = await gateway(store, broker);
    second.clock.advance(10_000);
    const c2 = await second.h.client();
    // Will flag 0 with CleanSession 0: the stored Will is kept (§6.3).
    expect(await c2.connect('pump-4', { clean: false, duration: 10 })).toBe(0);
    second.clock.advance(6_000); // past the restart's deadline, within the new Keep Alive
    expect(wills).toEqual([]);
    expect(second.h.gw.session('pump-4')?.state).toBe('active');
    // Its own supervision still holds: silent for 1.5 × Keep Alive, it is lost with its Will.
    second.clock.advance(10_000);
    expect(wills).toEqual(['status/pump-4 offline']);
  });

  it('publishes no Will after a restart for a sensor that had DISCONNECTed', async () => {
    const { store, broker, wills } = setup();
    const first = await gateway(store, broker);
    const c = await first.h.client();
    await c.connect('pump-4', { clean: false, duration: 10, will: WILL });
    c.send({ type: MsgType.DISCONNECT, duration: undefined });
    await c.next(MsgType.DISCONNECT);
    await stop(first.h, c);

    const second = await gateway(store, broker);
    second.clock.advance(1_800_000);
    expect(wills).toEqual([]);
    expect(second.h.gw.session('pump-4')?.state).toBe('disconnected');
  });

  it('waits 1.5 × the sleep Duration of a sensor that was asleep at the stop before it publishes the Will', async () => {
    const { store, broker, wills } = setup();
    const first = await gateway(store, broker);
    const c = await first.h.client();
    await c.connect('pump-4', { clean: false, duration: 10, will: WILL });
    c.send({ type: MsgType.DISCONNECT, duration: 120 });
    await c.next(MsgType.DISCONNECT);
    expect(first.h.gw.session('pump-4')?.state).toBe('asleep');
    await stop(first.h, c);

    const second = await gateway(store, broker);
    second.clock.advance(179_000); // far past 1.5 × its Keep Alive: a sleeper is not expected that soon
    expect(wills).toEqual([]);
    second.clock.advance(1_100);
    expect(wills).toEqual(['status/pump-4 offline']);
  });

  it('keeps the session of a sensor asleep at the stop until 1.5 × its sleep Duration has passed, when that is longer than the session expiry', async () => {
    const { store, broker } = setup();
    const first = await gateway(store, broker);
    const c = await first.h.client();
    await c.connect('buoy-1', { clean: false, duration: 10 });
    expect((await c.subscribe('cmd/buoy-1', 1)).returnCode).toBe(0);
    c.send({ type: MsgType.DISCONNECT, duration: 3000 }); // 1.5 × 3,000 s is longer than session_expiry (1 h)
    await c.next(MsgType.DISCONNECT);
    await stop(first.h, c);

    const second = await gateway(store, broker);
    second.clock.advance(3_700_000);
    expect(second.h.gw.session('buoy-1')?.subQos?.get('cmd/buoy-1')).toBe(1);
    second.clock.advance(800_000);
    expect(second.h.gw.session('buoy-1')).toBeUndefined();
  });

  it('publishes the Will of a session still awaited after the restart when the session limit evicts it for a new sensor', async () => {
    const { store, broker, wills } = setup();
    const first = await gateway(store, broker, 'max_clients: 1');
    const c1 = await first.h.client();
    await c1.connect('pump-4', { clean: false, duration: 10, will: WILL });
    await stop(first.h, c1);

    const second = await gateway(store, broker, 'max_clients: 1');
    const c2 = await second.h.client();
    expect(await c2.connect('new-sensor', { clean: true, duration: 10 })).toBe(0);
    expect(second.h.gw.session('pump-4')).toBeUndefined();
    expect(wills).toEqual(['status/pump-4 offline']);
  });

  it('owes no Will for a session stored by an earlier version, which did not record how its connection ended', async () => {
    const { store, broker, wills } = setup();
    store.records.set('old-7', JSON.stringify({ will: { topic: 'status/old-7', qos: 1, retain: false, payload: Buffer.from('gone').toString('base64') }, subs: [], topics: [] }));
    const { h, clock } = await gateway(store, broker);
    expect(h.gw.session('old-7')?.will?.topic).toBe('status/old-7');
    clock.advance(1_800_000);
    expect(wills).toEqual([]);
  });
});
