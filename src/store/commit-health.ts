/**
 * Whether the group commits keep failing (for /healthz). The committer still turns while its
 * commits fail (a full disk, a dying SD card), so the progress watchdog does not see it; yet
 * nothing is acknowledged meanwhile. A failure that lasts past the grace period makes the
 * gateway unhealthy with the last error, and the first commit that succeeds makes it healthy.
 */
import type { Clock } from '../core/clock.js';

export class CommitHealth {
  private since: number | undefined;
  private last = '';

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    /** Failures shorter than this (a disk-full moment the reserve relieves) are not reported. */
    private readonly graceMs = 30_000,
  ) {}

  committed(): void {
    this.since = undefined;
  }

  failed(err: Error): void {
    this.since ??= this.clock.now();
    this.last = err.message;
  }

  /** 'ok', or a sentence naming how long commits have failed and the last error. */
  state(): string {
    if (this.since === undefined) return 'ok';
    const forMs = this.clock.now() - this.since;
    return forMs < this.graceMs ? 'ok' : `every commit has failed for ${Math.round(forMs / 1000)}s, nothing is acknowledged: ${this.last}`;
  }
}
