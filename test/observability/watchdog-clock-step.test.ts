import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../../src/observability/systemd-notify.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

const flush = () => new Promise((r) => setImmediate(r));

describe('the systemd watchdog across a step of the wall clock', () => {
  it('does not take a step of the wall clock forward a day for an event-loop stall: no ping is withheld', async () => {
    const wall = new SteppingWall();
    const pings: string[][] = [];
    const notifier = new SystemdNotifier({
      env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' },
      log: pino({ level: 'silent' }),
      clock: wall,
      monotonic: () => wall.mono.now(),
      send: async (_socket, state) => void pings.push([...state]),
    });
    notifier.startWatchdog();
    await flush();
    wall.advance(10_000);
    wall.step(DAY);
    wall.advance(20_000);
    await flush();
    expect(notifier.counts.withheld).toBe(0);
    expect(pings.filter((p) => p.includes('WATCHDOG=1')).length).toBeGreaterThanOrEqual(2); // at 0 s and 15 s, past the step
    notifier.close();
  });
});
