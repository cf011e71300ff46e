/** Other writers of the outbox's database that ride in its group commits (outbox-core.ts). */
import type { OutpostError } from '../core/errors.js';

/** Another writer whose work rides in the outbox's transactions. */
export interface CommitParticipant {
  /** Whether it has work waiting (a failed commit is retried while some participant has). */
  hasWork(): boolean;
  /** Takes the work of the next commit, outside the transaction; undefined when none. */
  take(): CommitBatch | undefined;
}

export interface CommitBatch {
  /** Runs inside the transaction; throwing rolls the whole commit back. */
  write(): void;
  committed(): void;
  /** The transaction failed: nothing of this batch is on the disk. */
  failed(err: OutpostError): void;
}

/** A participant's handle on the commits it joined. */
export interface CommitJoin {
  /**
   * Asks for a commit; false when the outbox is closed. Without `wait` the work may be held
   * up to the commit delay; with it somebody waits for this commit: `wait.origin` (see
   * originKey) lets the pacer tell a publisher waiting on each acknowledgement from one that
   * is not, and without an origin the commit comes within the commit window.
   */
  schedule(wait?: { origin?: string }): boolean;
  leave(): void;
}
