/**
 * Bounds the password verifications (scrypt, 32 MiB and tens of ms each) running at once;
 * the rest wait in order, and a full waiting line refuses at once instead of growing.
 * A waiting job whose client left meanwhile is skipped, never run.
 */
export class VerifyQueue {
  private running = 0;
  private readonly waiting: { job: () => Promise<void>; stale: () => boolean }[] = [];

  /** `limit()` is read at each start, so a reloaded config applies to the next job. */
  constructor(
    private readonly limit: () => number,
    private readonly maxWaitingPerSlot = 50,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `job` now or later; false when the line is full (the caller refuses as busy). */
  submit(job: () => Promise<void>, stale: () => boolean): boolean {
    if (this.running < this.limit()) {
      this.start(job);
      return true;
    }
    if (this.waiting.length >= this.limit() * this.maxWaitingPerSlot) return false;
    this.waiting.push({ job, stale });
    return true;
  }

  private start(job: () => Promise<void>): void {
    this.running++;
    const done = () => {
      this.running--;
      this.next();
    };
    job().then(done, done);
  }

  private next(): void {
    while (this.running < this.limit() && this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      if (w.stale()) continue;
      this.start(w.job);
    }
  }
}
