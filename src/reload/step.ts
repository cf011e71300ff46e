/**
 * One live-reload step per component: it gets the new config (restart-only settings already
 * put back to their running values, see config/restart-settings.ts) and the running one, and
 * applies the difference to its component without dropping what the component serves.
 *
 *   SIGHUP ─▶ Reloader: load + validate ─▶ restart-only report ─▶ check every step ─▶ apply each step
 *
 * `check` runs for every step before any `apply`: a new config a step cannot take (a bridge
 * CA file that does not exist) is rejected as a whole and the running one stays.
 */
import type { Config } from '../config/schema.js';

export interface ReloadResult {
  /** What changed, one short phrase each ("bridge cloud added"); empty when nothing did. */
  changes: string[];
}

export interface ReloadStep {
  readonly name: string;
  /**
   * Config paths this step applies live (a path covers every key below it). Together with
   * RESTART_SETTINGS they must cover the whole schema (a test checks it).
   */
  readonly covers: readonly string[];
  /**
   * Throws (or rejects with) an OutpostError (one sentence: what and how to fix) when `next`
   * cannot be applied. May prepare what `apply` then installs (files read and parsed).
   */
  check?(next: Config, prev: Config): void | Promise<void>;
  apply(next: Config, prev: Config): Promise<ReloadResult>;
}

export const nothingChanged: ReloadResult = Object.freeze({ changes: [] }) as ReloadResult;
