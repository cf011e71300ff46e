/**
 * Live reload: re-reads the config file (and its included device maps) and hands the
 * difference to the reload steps, one per component.
 *
 *   request() ─┬─ idle: run ───────────────────────────────────────────────┐
 *              └─ running: mark pending (many SIGHUPs during a run = one more run after it)
 *   run: RELOADING=1 ─▶ load (FILE:LINE:COL on error: log, keep the running config)
 *        ─▶ restart-only settings: one line each, running value kept
 *        ─▶ every step's check ─▶ every step's apply ─▶ READY=1
 *
 * Reloads are serialized, never run before the gateway started, and close() waits for the
 * one in progress so a stop never races a bridge being replaced.
 */
import type { Logger } from 'pino';
import { isOutpostError } from '../core/errors.js';
import { keepRunningValues, restartChanges, restartMessage } from '../config/restart-settings.js';
import type { Config } from '../config/schema.js';
import type { ReloadStep } from './step.js';

/** What the reloader tells the service manager (SystemdNotifier; no-ops without NOTIFY_SOCKET). */
export interface ReloadNotifier {
  reloading(): Promise<void>;
  ready(status?: string): Promise<void>;
}

export interface ReloaderDeps {
  /** Reads and validates the config file; throws OutpostError CONFIG_* with FILE:LINE:COL. */
  load(): Config;
  /** The config the gateway started with. */
  running: Config;
  steps: readonly ReloadStep[];
  log: Logger;
  notifier?: ReloadNotifier;
}

export interface ReloadSummary {
  runs: number;
  rejected: number;
  last: { at: number; applied: boolean; reason?: string } | undefined;
}

export type ReloadOutcome =
  | { status: 'applied'; changes: string[]; restartNeeded: string[] }
  | { status: 'rejected'; reason: string }
  | { status: 'closed' };

export class Reloader {
  private running: Config;
  private active: Promise<void> | undefined;
  private pending = false;
  private ready = false;
  private closed = false;
  private waiters: ((o: ReloadOutcome) => void)[] = [];
  /** Reloads run so far, and how many were rejected (tests, metrics). */
  readonly counts = { runs: 0, rejected: 0 };
  /** The last reload that ran: when it ended (ms) and, if rejected, why (metrics, status). */
  last: ReloadSummary['last'];

  /** What /metrics and `outpost status` say about reloads: `systemctl reload` succeeds whatever the file holds. */
  summary(): ReloadSummary {
    return { runs: this.counts.runs, rejected: this.counts.rejected, last: this.last };
  }

  constructor(private readonly deps: ReloaderDeps) {
    this.running = deps.running;
  }

  /** The config in effect (restart-only settings as started). */
  get config(): Config {
    return this.running;
  }

  /**
   * Asks for a reload; resolves with the outcome of the run that includes this request.
   * While one runs, requests coalesce into one more run after it.
   */
  request(): Promise<ReloadOutcome> {
    if (this.closed) return Promise.resolve({ status: 'closed' });
    const outcome = new Promise<ReloadOutcome>((resolve) => this.waiters.push(resolve));
    if (this.active !== undefined || !this.ready) {
      this.pending = true;
      if (!this.ready) this.deps.log.info('reload requested during start-up; it runs once the gateway is up');
    } else {
      this.kick();
    }
    return outcome;
  }

  /** The gateway is up: reloads may run (one asked for during start-up runs now). */
  started(): void {
    this.ready = true;
    if (this.pending && this.active === undefined) this.kick();
  }

  /** No more reloads; waits for the one in progress. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending = false;
    await this.active;
    for (const w of this.waiters.splice(0)) w({ status: 'closed' });
  }

  private kick(): void {
    this.pending = false;
    const waiters = this.waiters.splice(0);
    this.active = this.run().then((o) => {
      for (const w of waiters) w(o);
      this.active = undefined;
      if (this.pending && !this.closed) this.kick();
    });
  }

  private async run(): Promise<ReloadOutcome> {
    const { log, notifier } = this.deps;
    this.counts.runs++;
    log.info('reloading config');
    await notifier?.reloading();
    let outcome: ReloadOutcome | undefined;
    try {
      outcome = await this.apply();
      this.last = { at: Date.now(), applied: outcome.status === 'applied', ...(outcome.status === 'rejected' ? { reason: outcome.reason } : {}) };
      return outcome;
    } finally {
      // STATUS= is what `systemctl status outpost` shows.
      await notifier?.ready(outcome?.status === 'applied' ? 'config reloaded' : 'config not reloaded; the previous one is running');
    }
  }

  private async apply(): Promise<ReloadOutcome> {
    const { log } = this.deps;
    const prev = this.running;
    try {
      const loaded = this.deps.load();
      const restart = restartChanges(prev, loaded);
      const next = keepRunningValues(prev, loaded, restart);
      for (const step of this.deps.steps) await step.check?.(next, prev);
      for (const key of restart) log.warn({ setting: key }, restartMessage(key));
      const changes: string[] = [];
      for (const step of this.deps.steps) {
        try {
          changes.push(...(await step.apply(next, prev)).changes);
        } catch (err) {
          // A step that fails half-way keeps what it did not get to; the other steps still apply.
          const why = err instanceof Error ? err.message : String(err);
          log.error({ step: step.name, ...(isOutpostError(err) ? { code: err.code } : { err }) }, `reload of ${step.name} incomplete: ${why}; what it did not apply keeps running as before`);
        }
      }
      this.running = next;
      log.info({ changes, restartNeeded: restart }, changes.length > 0 ? 'config reloaded' : 'config reloaded, nothing to apply');
      return { status: 'applied', changes, restartNeeded: restart };
    } catch (err) {
      this.counts.rejected++;
      if (!isOutpostError(err)) {
        log.error({ err }, 'config not reloaded (unexpected error), the running config stays');
        return { status: 'rejected', reason: String((err as Error).message ?? err) };
      }
      // The message is the loader's FILE:LINE:COL sentence(s), or a step's own sentence.
      log.error({ code: err.code }, `config not reloaded, the running config stays: ${err.message}`);
      return { status: 'rejected', reason: err.message };
    }
  }
}
