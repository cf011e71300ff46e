/**
 * Steps of the wall clock, for the outbox (core/clock-steps.ts): which rows this process
 * stamped, and the step not yet stored. Memory moves at once (the pending appends, the
 * committed tails, the oldest row per bridge); the file by one UPDATE per bridge first in
 * the next commit, so rows and their stamps stay consistent across a crash; until then rows
 * read from the file are moved as they are read.
 *
 * Only this run's rows move. A row of an earlier run was stamped by that run's clock: its age
 * includes the time the gateway was off, which is its true age. And a Pi that booted in 1970
 * and was then set by NTP must not move yesterday's rows 56 years into the future.
 */
import type { OutboxBackend } from './backend.js';

/** Moves one row's stamps by a step of the wall clock (pending, committed-tail and memory rows alike). */
export function shiftRowStamps(r: { createdAt: number; expiresAt: number | null }, deltaMs: number): void {
  r.createdAt += deltaMs;
  if (r.expiresAt !== null) r.expiresAt += deltaMs;
}

export class StampShift {
  /** Per bridge, its newest seq before this run: rows above it are this run's. */
  private readonly from = new Map<string, number>();
  /** A step not yet applied to the stored rows (ms). */
  pending = 0;

  /** Every use of a bridge, before any append of this run: its newest row is asked for once. */
  started(bridge: string, backend: Pick<OutboxBackend, 'newest'>): void {
    if (!this.from.has(bridge)) this.from.set(bridge, backend.newest(bridge));
  }

  /** What a row read from the backend is moved by until the next commit stores the step. */
  rowShift(bridge: string, seq: number): number {
    return this.pending !== 0 && seq > (this.from.get(bridge) ?? Infinity) ? this.pending : 0;
  }

  /** Inside a transaction: stores the pending step in this run's rows; returns the step stored. */
  store(backend: OutboxBackend): number {
    const d = this.pending;
    if (d !== 0) for (const [bridge, after] of this.from) backend.shiftStamps(d, bridge, after);
    return d;
  }

  /** The transaction that stored `d` committed. */
  stored(d: number): void {
    this.pending -= d;
  }
}
