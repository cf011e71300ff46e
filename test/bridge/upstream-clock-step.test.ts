/**
 * The cloud link measures its keepalive on the wall clock: a step of it forward must not
 * make a healthy link look silent for a day and drop it (a reconnect resends what was in
 * flight).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { StepCheckedClock } from '../../src/core/clock-steps.js';
import { testCerts } from '../helpers/certs.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { makeClient } from '../helpers/upstream-harness.js';

const DAY = 86_400_000;
const certs = testCerts();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** Real time and timers, with a wall clock the test can step. */
class SteppableWall implements Clock {
  offset = 0;
  now = (): number => Date.now() + this.offset;
  setTimeout = systemClock.setTimeout;
  setInterval = systemClock.setInterval;
}

describe('the cloud link across a step of the wall clock', () => {
  it('keeps a healthy link with keepalive 1 s up when the wall clock steps forward a day', async () => {
    const m = new Mosquitto();
    cleanups.push(() => m.dispose());
    await m.start();
    const wall = new SteppableWall();
    const clock = new StepCheckedClock(wall, () => performance.now());
    const { client, rec } = makeClient({ url: m.tlsUrl, tls: () => ({ ca: certs.pem(certs.ca.crt) }), keepalive: 1, connectTimeoutMs: 500 }, { clock });
    clock.onStep((d) => client.clockStepped(d));
    cleanups.push(() => client.stop());
    await client.start(new AbortController().signal);
    await rec.until(() => client.connected, 'the link up');
    await new Promise((r) => setTimeout(r, 600));
    wall.offset += DAY;
    await new Promise((r) => setTimeout(r, 2500)); // two keepalive intervals: pings flow
    expect(clock.steps).toBe(1);
    expect(rec.downs).toEqual([]);
    expect(client.connected).toBe(true);
  });
});
