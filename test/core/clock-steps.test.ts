import { describe, expect, it } from 'vitest';
import { formatStep, StepCheckedClock } from '../../src/core/clock-steps.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { DAY, SteppingWall } from '../helpers/stepping-clock.js';

describe('the clock-step detector', () => {
  it('reports a forward step of the wall clock once, with its size, from the now() that sees it', () => {
    const wall = new SteppingWall();
    const seen: number[] = [];
    wall.clock.onStep((d) => seen.push(d));
    wall.advance(5000);
    expect(wall.clock.now()).toBe(wall.now());
    wall.step(3 * DAY + 4 * 3_600_000);
    wall.clock.now();
    wall.clock.now();
    expect(seen).toEqual([3 * DAY + 4 * 3_600_000]);
    expect(wall.clock.steps).toBe(1);
    expect(wall.clock.lastStepMs).toBe(3 * DAY + 4 * 3_600_000);
  });

  it('reports a backward step as a negative one', () => {
    const wall = new SteppingWall();
    const seen: number[] = [];
    wall.clock.onStep((d) => seen.push(d));
    wall.step(-90_000);
    wall.clock.now();
    expect(seen).toEqual([-90_000]);
  });

  it('sees a step on its periodic check when nobody asks the time', () => {
    const wall = new SteppingWall();
    const seen: number[] = [];
    wall.clock.onStep((d) => seen.push(d));
    wall.clock.start();
    wall.step(DAY);
    wall.advance(1000);
    expect(seen).toEqual([DAY]);
    wall.clock.stop();
    expect(wall.mono.pending).toBe(0);
  });

  it('does not take a slew or a drift within the tolerance for a step', () => {
    const wall = new SteppingWall();
    const seen: number[] = [];
    wall.clock.onStep((d) => seen.push(d));
    for (let i = 0; i < 100; i++) {
      wall.advance(1000);
      wall.step(1500); // far faster than any NTP slew, still under the 2 s tolerance per check
      wall.clock.now();
    }
    expect(seen).toEqual([]);
  });

  it('sees no step when wall and monotonic time advance together', () => {
    const fake = new FakeClock();
    const clock = new StepCheckedClock(fake, () => fake.now());
    const seen: number[] = [];
    clock.onStep((d) => seen.push(d));
    fake.advance(10 * DAY);
    clock.now();
    expect(seen).toEqual([]);
  });

  it('formats a step for the log line', () => {
    expect(formatStep(3 * DAY + 4 * 3_600_000 + 17_000)).toBe('3 d 4 h');
    expect(formatStep(-(12 * 60_000 + 5000))).toBe('12 min 5 s');
    expect(formatStep(2500)).toBe('2.5 s');
  });
});
