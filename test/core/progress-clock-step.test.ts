import { describe, expect, it } from 'vitest';
import { ProgressMonitor } from '../../src/core/progress.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

describe('the progress monitor across a step of the wall clock', () => {
  it('does not report a waiting component stuck when the wall clock steps forward a day, and does once it really waited stuck_after', () => {
    const wall = new SteppingWall();
    const monitor = new ProgressMonitor(30_000, wall, () => wall.mono.now());
    const since = wall.now();
    monitor.watch(() => [{ name: 'outbox committer', waitingSince: () => since }]);
    expect(monitor.stuck()).toEqual([]);
    wall.advance(10_000);
    wall.step(DAY);
    expect(monitor.stuck()).toEqual([]);
    wall.advance(21_000);
    expect(monitor.stuck()).toEqual([{ name: 'outbox committer', forMs: 31_000 }]);
  });

  it('still reports a component stuck across a step of the wall clock back', () => {
    const wall = new SteppingWall();
    const monitor = new ProgressMonitor(30_000, wall, () => wall.mono.now());
    const since = wall.now();
    monitor.watch(() => [{ name: 'broker keepalive sweep', waitingSince: () => since }]);
    expect(monitor.stuck()).toEqual([]);
    wall.advance(10_000);
    wall.step(-DAY);
    wall.advance(21_000);
    expect(monitor.stuck()).toEqual([{ name: 'broker keepalive sweep', forMs: 31_000 }]);
  });
});
