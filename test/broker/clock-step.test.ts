/**
 * A step of the wall clock (NTP on a Raspberry Pi without a real-time clock) must not
 * expire what the broker holds: queued and retained messages keep their remaining Message
 * Expiry, offline persistent sessions their remaining Session Expiry (after a restart too),
 * and idle clients are not cut off for their keepalive.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StampMover } from '../../src/core/clock-steps.js';
import type { Harness } from '../helpers/broker-harness.js';
import { collect, connect, publish, subscribe, ticks, until } from '../helpers/flows.js';
import { persistentBroker, type PersistHarness } from '../helpers/persist-harness.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

let dir: string;
let wall: SteppingWall;
const harnesses: PersistHarness[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-broker-step-'));
  wall = new SteppingWall();
});
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A broker on a SQLite file, told of the wall clock's steps as the gateway tells it. */
async function broker(): Promise<PersistHarness> {
  const h = await persistentBroker(dir, { clock: wall.clock });
  harnesses.push(h);
  const off = wall.clock.onStep((d) => {
    h.outbox.clockStepped(d);
    h.broker.clockStepped(new StampMover(d));
  });
  const stop = h.stop.bind(h);
  h.stop = async () => {
    off();
    await stop();
  };
  return h;
}

/** The flows helpers' view of a persistent harness. */
function flows(h: PersistHarness): Harness {
  return { broker: h.broker, client: (v) => h.client(v), stream: () => h.stream(), close: () => h.stop() };
}

async function offlineSubscriber(h: PersistHarness): Promise<void> {
  const { c } = await connect(flows(h), 'away', { clean: false, properties: { sessionExpiryInterval: 3600 } });
  await subscribe(c, 'exp/#', 1);
  c.send({ cmd: 'disconnect', reasonCode: 0 });
  await c.waitClosed();
  await until(() => h.broker.connectionCount === 0, 'the close');
}

describe('the broker across a step of the wall clock', () => {
  it('delivers a queued message with Message Expiry Interval 60 s after a step of +1 day, with 40 s left', async () => {
    const h = await broker();
    await offlineSubscriber(h);
    const { c: pub } = await connect(flows(h), 'pub');
    await publish(pub, 'exp/a', 'sixty', 1, { properties: { messageExpiryInterval: 60 } });
    wall.advance(20_000);
    wall.step(DAY);
    const { c } = await connect(flows(h), 'away', { clean: false, properties: { sessionExpiryInterval: 3600 } });
    const [a] = await collect(c, 1, { ack: true });
    expect([a!.topic, a!.properties?.messageExpiryInterval]).toEqual(['exp/a', 40]);
  });

  it('keeps a queued message and its offline session across a step of +1 day and a restart, with the expiry left', async () => {
    const h = await broker();
    await offlineSubscriber(h);
    const { c: pub } = await connect(flows(h), 'pub');
    await publish(pub, 'exp/a', 'sixty', 1, { properties: { messageExpiryInterval: 60 } });
    wall.advance(10_000);
    wall.step(DAY);
    wall.clock.now();
    await h.outbox.flush();
    await h.stop();
    const again = await broker();
    const { c, connack } = await connect(flows(again), 'away', { clean: false, properties: { sessionExpiryInterval: 3600 } });
    expect(connack.sessionPresent).toBe(true);
    const [a] = await collect(c, 1, { ack: true });
    expect([a!.topic, a!.properties?.messageExpiryInterval]).toEqual(['exp/a', 50]);
  });

  it('hands a retained message with Message Expiry Interval 60 s to a new subscriber after a step of +1 day, with 30 s left', async () => {
    const h = await broker();
    const { c: pub } = await connect(flows(h), 'pub');
    await publish(pub, 'exp/r', 'kept', 1, { retain: true, properties: { messageExpiryInterval: 60 } });
    wall.advance(30_000);
    wall.step(DAY);
    const { c } = await connect(flows(h), 'late');
    await subscribe(c, 'exp/#', 1);
    const [r] = await collect(c, 1, { ack: true });
    expect([r!.topic, r!.properties?.messageExpiryInterval]).toEqual(['exp/r', 30]);
  });

  it('does not cut off an idle client for its keepalive when the wall clock steps forward', async () => {
    const h = await broker();
    const { c } = await connect(flows(h), 'idle', { keepalive: 60 });
    wall.advance(1000);
    wall.step(DAY);
    wall.advance(2000); // the keepalive sweep runs
    await ticks(20);
    expect(h.broker.connectionCount).toBe(1);
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
  });

  it('leaves a retained message of an earlier run alone: its Message Expiry counts the time the gateway was off', async () => {
    const first = await broker();
    const { c: pub } = await connect(flows(first), 'pub');
    await publish(pub, 'exp/r', 'an hour', 1, { retain: true, properties: { messageExpiryInterval: 3600 } });
    await first.stop();
    wall.advance(50 * 60_000); // off for 50 minutes; the Pi boots 3 days behind
    wall.step(-3 * DAY);
    wall.restart(); // a new process: the step at boot is not seen
    const second = await broker();
    wall.advance(20 * 60_000);
    wall.step(3 * DAY); // NTP sets the clock: the message is 70 minutes old
    wall.clock.now();
    const { c } = await connect(flows(second), 'late');
    await subscribe(c, 'exp/#', 1);
    await ticks(20);
    expect(c.received.filter((p) => p.cmd === 'publish')).toEqual([]);
    await second.outbox.flush(); // the step is stored: the file keeps the earlier run's stamp too
    await second.stop();
    const third = await broker();
    const { c: again } = await connect(flows(third), 'later');
    await subscribe(again, 'exp/#', 1);
    await ticks(20);
    expect(again.received.filter((p) => p.cmd === 'publish')).toEqual([]);
  });

  it('ends an offline session of an earlier run when its Session Expiry passed on the clock NTP set', async () => {
    const first = await broker();
    await offlineSubscriber(first); // Session Expiry 1 h
    await first.stop();
    wall.advance(50 * 60_000);
    wall.step(-3 * DAY);
    wall.restart();
    const second = await broker(); // restored: its expiry timer is armed on the clock 3 days behind
    wall.advance(20 * 60_000);
    wall.step(3 * DAY); // offline for 70 minutes in truth
    wall.clock.now();
    wall.advance(1);
    await ticks(20);
    const { connack } = await connect(flows(second), 'away', { clean: false, properties: { sessionExpiryInterval: 3600 } });
    expect(connack.sessionPresent).toBe(false);
  });

  it('keeps a restored offline session whose client came back after the step: the expiry timer armed at the restart does not end it', async () => {
    const first = await broker();
    await offlineSubscriber(first); // Session Expiry 1 h
    await first.stop();
    wall.advance(10 * 60_000);
    wall.step(-3 * DAY);
    wall.restart();
    const second = await broker(); // its expiry timer: 3 days and 50 minutes on the clock 3 days behind
    wall.advance(5 * 60_000);
    wall.step(3 * DAY);
    wall.clock.now();
    const { c, connack } = await connect(flows(second), 'away', { clean: false, keepalive: 0, properties: { sessionExpiryInterval: 3600 } });
    expect(connack.sessionPresent).toBe(true);
    wall.advance(4 * DAY);
    const { c: pub } = await connect(flows(second), 'pub', { keepalive: 0 });
    await publish(pub, 'exp/late', 'still here', 1);
    const [m] = await collect(c, 1, { ack: true });
    expect(m!.topic).toBe('exp/late');
  });

  it('publishes a restored pending Will when its Will Delay passed on the clock NTP set, not 3 days later', async () => {
    const first = await broker();
    const will = { topic: 'status/dev', payload: Buffer.from('offline'), qos: 1 as const, retain: false, properties: { willDelayInterval: 600 } };
    const { c } = await connect(flows(first), 'dev', { clean: false, keepalive: 0, will, properties: { sessionExpiryInterval: 3600 } });
    c.destroy(); // lost: the Will is due in 10 minutes
    await until(() => first.broker.connectionCount === 0, 'the close');
    await first.outbox.flush();
    await first.stop();
    wall.advance(2 * 60_000);
    wall.step(-3 * DAY);
    wall.restart();
    const second = await broker(); // its Will timer: 3 days and 8 minutes on the clock 3 days behind
    const seen: string[] = [];
    second.broker.subscribe('status/#', { kind: 'system', id: 'watch' }, { qos: 1 }, (m) => seen.push(m.payload.toString()));
    wall.advance(60_000);
    wall.step(3 * DAY);
    wall.clock.now();
    wall.advance(6 * 60_000 + 50_000);
    expect(seen).toEqual([]);
    wall.advance(20_000);
    expect(seen).toEqual(['offline']);
  });
});
