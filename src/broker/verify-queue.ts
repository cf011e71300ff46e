/**
 * Bounds the password verifications (scrypt, 32 MiB and tens of ms each) running at once;
 * the rest wait, and a full waiting line refuses at once instead of growing.
 * A waiting job whose client left meanwhile is skipped, never run, and holds no room: a
 * full line (or a source's full share) first drops those, so clients that gave up and
 * reconnect (a connect timeout shorter than the wait, on a busy Pi) are not refused as busy
 * because of their own earlier attempts.
 *
 * Fair between source addresses: waiting jobs are started one address at a time in turn,
 * and one address may hold at most a quarter of the line. Otherwise a single host sending
 * wrong passwords (no credentials needed, no connect_rate by default) filled the line, and
 * every other client, right password or not, waited behind it or was refused as busy.
 */
interface Waiting {
  job: () => Promise<void>;
  stale: () => boolean;
}

export class VerifyQueue {
  private running = 0;
  private count = 0;
  /** Waiting jobs per source address, in the order the addresses get their turn. */
  private readonly waiting = new Map<string, Waiting[]>();

  /** `limit()` is read at each start, so a reloaded config applies to the next job. */
  constructor(
    private readonly limit: () => number,
    private readonly maxWaitingPerSlot = 50,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.count;
  }

  /** Runs `job` now or later; false when the line, or this source's share of it, is full (the caller refuses as busy). */
  submit(job: () => Promise<void>, stale: () => boolean, address = ''): boolean {
    // One host, one share: an IPv4 client of a dual-stack listener ("::" gives ::ffff:10.0.0.7)
    // is the same host as on an IPv4 listener (10.0.0.7).
    const source = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    if (this.running < this.limit() && this.count === 0) {
      this.start(job);
      return true;
    }
    const line = this.limit() * this.maxWaitingPerSlot;
    const share = Math.max(1, Math.floor(line / 4));
    // Jobs of clients that left hold no room: pruned before refusing (only when full, so not per submit).
    if ((this.waiting.get(source)?.length ?? 0) >= share) this.prune(source);
    if (this.count >= line) for (const s of [...this.waiting.keys()]) this.prune(s);
    const mine = this.waiting.get(source);
    if (this.count >= line || (mine?.length ?? 0) >= share) return false;
    if (mine === undefined) this.waiting.set(source, [{ job, stale }]);
    else mine.push({ job, stale });
    this.count++;
    this.next();
    return true;
  }

  /** Drops the waiting jobs of `source` whose clients left; the source keeps its turn if any remain. */
  private prune(source: string): void {
    const jobs = this.waiting.get(source);
    if (jobs === undefined) return;
    const live = jobs.filter((w) => !w.stale());
    this.count -= jobs.length - live.length;
    if (live.length === 0) this.waiting.delete(source);
    else this.waiting.set(source, live); // an existing key keeps its place in the turn order
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
    while (this.running < this.limit() && this.count > 0) {
      // The address whose turn it is goes to the back of the line with what it has left.
      const [source, jobs] = this.waiting.entries().next().value as [string, Waiting[]];
      this.waiting.delete(source);
      const w = jobs.shift()!;
      this.count--;
      if (jobs.length > 0) this.waiting.set(source, jobs);
      if (!w.stale()) this.start(w.job);
    }
  }
}
