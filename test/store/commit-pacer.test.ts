/**
 * The commit pacer alone, on made-up times: which publishers it calls prompt (answered
 * within the commit window) and which may be held for the commit delay.
 */
import { describe, expect, it } from 'vitest';
import { CommitPacer } from '../../src/store/commit-pacer.js';

describe('CommitPacer', () => {
  it('calls an origin it has never seen prompt', () => {
    const p = new CommitPacer({ delayMs: 100 });
    expect(p.arrive('new-sensor', 0)).toBe(true);
  });

  it('keeps a publisher that sends right after each answer prompt', () => {
    const p = new CommitPacer({ delayMs: 100 });
    let t = 0;
    for (let i = 0; i < 50; i++) {
      expect(p.arrive('sequential', t)).toBe(true);
      t += 3;
      p.answered(t);
      t += 1; // the publisher's turnaround
    }
  });

  it('holds a publisher on a period longer than the delay from its second message on', () => {
    const p = new CommitPacer({ delayMs: 100 });
    expect(p.arrive('periodic', 0)).toBe(true);
    p.answered(2);
    for (let t = 1000; t <= 10_000; t += 1000) {
      expect(p.arrive('periodic', t)).toBe(false);
      p.answered(t + 100);
    }
  });

  it('does not count messages that arrive while the origin already has one in the batch', () => {
    // A pipelined publisher with a window of 10: ten messages per batch, the first of each
    // batch right after the answer to the previous ten. It is waiting on us, so prompt.
    const p = new CommitPacer({ delayMs: 100 });
    let t = 0;
    for (let round = 0; round < 20; round++) {
      const first = p.arrive('pipelined', t);
      for (let i = 1; i < 10; i++) p.arrive('pipelined', t + i * 0.1);
      expect(first).toBe(true);
      t += 3;
      p.answered(t);
      t += 0.5;
    }
  });

  it('lets a waiting publisher that paused once be prompt again after one held message', () => {
    const p = new CommitPacer({ delayMs: 100 });
    let t = 0;
    for (let i = 0; i < 10; i++) {
      p.arrive('sequential', t);
      p.answered((t += 2));
      t += 1;
    }
    t += 500; // the publisher stopped for half a second
    expect(p.arrive('sequential', t)).toBe(false);
    p.answered((t += 100));
    expect(p.arrive('sequential', t + 1)).toBe(true);
  });

  it('calls an origin prompt at most a quarter of the time when its messages fall at random after answers', () => {
    // A sensor on a 1 s period against commits every 100 ms: its message lands anywhere
    // in the cycle. Deterministic spread: gaps of 0..99 ms in a fixed shuffle.
    const p = new CommitPacer({ delayMs: 100 });
    p.arrive('sensor', 0);
    p.answered(0);
    let prompt = 0;
    let t = 0;
    for (let i = 0; i < 100; i++) {
      const gap = (i * 37) % 100;
      t += 1000;
      if (p.arrive('sensor', t + gap)) prompt++;
      p.answered(t + gap + 100);
      t += 100;
    }
    expect(prompt).toBeLessThan(25);
  });

  it('remembers at most maxOrigins origins, forgetting the least recently seen', () => {
    const p = new CommitPacer({ delayMs: 100, maxOrigins: 100 });
    for (let i = 0; i < 1000; i++) p.arrive(`client-${i}`, i);
    expect(p.size).toBe(100);
    p.answered(1000);
    // client-999 is remembered (and held: its next message comes long after its answer),
    // client-0 was forgotten and counts as new again (prompt).
    expect(p.arrive('client-999', 5000)).toBe(false);
    expect(p.arrive('client-0', 5000)).toBe(true);
  });

  it('calls everything prompt when the delay is 0 or no origin is named', () => {
    const zero = new CommitPacer({ delayMs: 0 });
    zero.arrive('periodic', 0);
    zero.answered(1);
    expect(zero.arrive('periodic', 5000)).toBe(true);
    const p = new CommitPacer({ delayMs: 100 });
    expect(p.arrive(undefined, 0)).toBe(true);
  });
});
