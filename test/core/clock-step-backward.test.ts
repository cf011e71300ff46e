/**
 * Rate limits measure elapsed time on the wall clock: a step of it back (NTP correcting a
 * clock that was ahead) must not refuse clients, drop sensors' datagrams or mute log lines
 * for the size of the step.
 */
import { describe, expect, it } from 'vitest';
import { ConnectLimits } from '../../src/broker/connect-limits.js';
import { FloodGuard } from '../../src/mqttsn/guards.js';
import { LogRateLimiter } from '../../src/observability/rate-limit.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

describe('rate limits across a step of the wall clock back', () => {
  it('admits a reconnecting address within its connect rate after the wall clock stepped back a day', () => {
    const wall = new SteppingWall();
    const l = new ConnectLimits({ maxConnections: 0, maxConnectionsPerAddress: 0, connectRate: 2, connectBurst: 3 }, { clock: wall.clock });
    expect(l.check('10.0.0.7')).toBeUndefined();
    wall.step(-DAY);
    wall.advance(1000);
    expect(l.check('10.0.0.7')).toBeUndefined();
  });

  it('admits a sensor\'s datagrams after the wall clock stepped back a day', () => {
    const wall = new SteppingWall();
    const g = new FloodGuard(wall.clock, 10, 5);
    expect(g.admit('10.0.0.9:5000')).toBe(true);
    wall.step(-DAY);
    wall.advance(1000);
    expect(g.admit('10.0.0.9:5000')).toBe(true);
  });

  it('opens a new log window after the wall clock stepped back a day', () => {
    const wall = new SteppingWall();
    const r = new LogRateLimiter(wall.clock, 10_000, 1);
    expect(r.take('k')).toBe(0);
    expect(r.take('k')).toBe(-1);
    wall.step(-DAY);
    wall.advance(11_000);
    expect(r.take('k')).toBe(1); // the line gets through and reports the one suppressed
  });
});
