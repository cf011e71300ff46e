/**
 * The gateway watches the wall clock for steps (NTP after a boot without a real-time clock):
 * a backlog acknowledged while the cloud is down survives a step of +3 days past max_age and
 * reaches the cloud, the step is logged once and counted in /metrics.
 *
 *   MQTT.js (QoS 1) ──▶ Gateway (wall clock = real time + offset, steps seen against
 *                        performance.now()) ──bridge, mTLS──▶ Mosquitto (down, then up)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';
import { localClient, publishAll, sleep, startBridgedGateway, waitFor } from '../helpers/bridge-gateway.js';
import { CloudObserver } from '../helpers/cloud-observer.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { mtlsBridge } from '../helpers/bridge-config.js';

const DAY = 86_400_000;
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});

/** Real time and real timers, with a wall clock the test can step. */
class SteppableWall implements Clock {
  offset = 0;
  now = (): number => Date.now() + this.offset;
  setTimeout = systemClock.setTimeout;
  setInterval = systemClock.setInterval;
}

describe('the gateway across a step of the wall clock', () => {
  it('delivers every acknowledged message of a backlog to the cloud after the wall clock stepped 3 days past max_age, and logs and counts the step', async () => {
    const cloud = new Mosquitto({ requireCertificate: true, persistence: true });
    cleanups.push(() => cloud.dispose());
    await cloud.start();
    const obs = await CloudObserver.connect(cloud, ['sites/17/#']);
    cleanups.push(() => obs.close());
    await cloud.stop(); // the uplink is down: the backlog waits in the outbox

    const wall = new SteppableWall();
    const gw = await startBridgedGateway({
      clock: wall,
      monotonic: () => performance.now(),
      level: 'info',
      bridges: [
        mtlsBridge(cloud.tlsPort, {
          buffer: { max_age: '1h' },
          rules: [{ pattern: 'sensors/#', remote_prefix: 'sites/17/' }],
        }),
      ],
    });
    cleanups.push(() => gw.dispose());
    const pub = await localClient(gw.url);
    cleanups.push(() => pub.endAsync());
    const payloads = Array.from({ length: 50 }, (_, i) => Buffer.from(`m-${i}`));
    await publishAll(pub, 'sensors/boiler', payloads);
    const backlog = () => gw.gateway.bridges[0]!.backlog();
    expect(backlog().rows).toBe(50);

    wall.offset += 3 * DAY + 4 * 3_600_000;
    await waitFor(() => gw.gateway.clockSteps()?.steps === 1, 'the step seen by the periodic check', 3000);
    const warned = gw.logs().filter((l) => l.msg.startsWith('wall clock stepped'));
    expect(warned.map((l) => l.msg)).toEqual(['wall clock stepped forward by 3 d 4 h; stored ages and expiry deadlines moved with it']);
    expect(backlog().rows).toBe(50);
    expect(wall.now() - backlog().oldestCreatedAt!).toBeLessThan(60_000);

    const metrics = renderMetrics(gw.gateway, { now: wall.now, eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true });
    expect(metrics).toContain('outpost_clock_steps_total 1');
    // The step is measured as wall time gained over monotonic time between two checks, so it
    // carries the millisecond granularity of Date.now() and any scheduling between the reads.
    const stepSeconds = Number(/^outpost_clock_last_step_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(Math.abs(stepSeconds - (3 * DAY + 4 * 3_600_000) / 1000)).toBeLessThan(1);

    await cloud.start();
    await obs.until(() => new Set(obs.messages.map((m) => m.payload.toString())).size === 50, 'all 50 messages at the cloud', 15_000);
    await sleep(100);
    expect(backlog().drops).toEqual({});
  }, 40_000);
});
