import { describe, expect, it } from 'vitest';
import { CLOSE_WINDOW_MS, CLOSES_IN_A_ROW, ClosingHead } from '../../src/bridge/closing-head.js';

/** Closes the link `n` times right after sending the row `seq` of `size` bytes; the last verdict. */
function closeAfter(h: ClosingHead, n: number, seq = 7, size = 1000, { lastAckAt = -Infinity, delay = 5 } = {}) {
  let verdict;
  for (let i = 0; i < n; i++) {
    const upAt = 10_000 * (i + 1);
    verdict = h.closed({ seq, size, sentAt: upAt + 1 }, lastAckAt, upAt, upAt + 1 + delay);
  }
  return verdict!;
}

describe('ClosingHead (a 3.1.1 cloud that closes the link on one message)', () => {
  it(`sets the head row aside at the ${CLOSES_IN_A_ROW}rd close right after it, once a smaller message went through`, () => {
    const h = new ClosingHead();
    h.taken(20);
    expect(closeAfter(h, CLOSES_IN_A_ROW - 1)).toEqual({ kind: 'suspect', closes: CLOSES_IN_A_ROW - 1 });
    expect(closeAfter(new ClosingHead(), 1)).toEqual({ kind: 'suspect', closes: 1 });
    const g = new ClosingHead();
    g.taken(20);
    expect(closeAfter(g, CLOSES_IN_A_ROW)).toEqual({ kind: 'set-aside', closes: CLOSES_IN_A_ROW });
  });

  it('never sets a row aside when the cloud took no smaller message (a cloud that takes nothing keeps its queue)', () => {
    const h = new ClosingHead();
    expect(closeAfter(h, 10).kind).toBe('suspect');
    const g = new ClosingHead();
    g.taken(5000);
    expect(closeAfter(g, 10).kind).toBe('suspect');
  });

  it('does not count a close that came late, after an ack, with no head, or with the head not sent on that connection, and starts over', () => {
    const table = [
      { what: 'late', sentAt: 11, lastAckAt: -Infinity, upAt: 10, now: 12 + CLOSE_WINDOW_MS },
      { what: 'acked since', sentAt: 11, lastAckAt: 11, upAt: 10, now: 12 },
      { what: 'sent before the connection', sentAt: 9, lastAckAt: -Infinity, upAt: 10, now: 12 },
      { what: 'not sent', sentAt: undefined, lastAckAt: -Infinity, upAt: 10, now: 12 },
    ];
    for (const t of table) {
      const h = new ClosingHead();
      h.taken(20);
      closeAfter(h, CLOSES_IN_A_ROW - 1);
      expect(h.closed({ seq: 7, size: 1000, sentAt: t.sentAt }, t.lastAckAt, t.upAt, t.now), t.what).toEqual({ kind: 'other' });
      expect(closeAfter(h, 1), t.what).toEqual({ kind: 'suspect', closes: 1 });
    }
    const h = new ClosingHead();
    h.taken(20);
    closeAfter(h, CLOSES_IN_A_ROW - 1);
    expect(h.closed(undefined, -Infinity, 0, 1)).toEqual({ kind: 'other' });
    expect(closeAfter(h, CLOSES_IN_A_ROW - 1, 8)).toEqual({ kind: 'suspect', closes: CLOSES_IN_A_ROW - 1 });
  });
});
