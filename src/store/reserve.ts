/**
 * A reserve file in the state directory (`outpost.reserve`, `store.reserve` bytes of zeros):
 * space held back so that a disk that fills up can be drained again.
 *
 *   disk fills ─▶ commits fail (SQLITE_FULL) ─▶ release(): the reserve is deleted
 *        └─▶ the WAL checkpoint and the deletes of the draining bridges fit ─▶ rows go away
 *   appends commit again and the disk has room ─▶ restore(): the reserve is written again
 *
 * Without it a full disk stays full: in WAL mode every commit, deletes included, first needs
 * room for new WAL frames, and a checkpoint needs room to grow the database file.
 */
import { closeSync, fsyncSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { Logger } from 'pino';

const CHUNK = 64 * 1024;

export class DiskReserve {
  private held = false;
  /** Given back on a full disk and not written again yet (not: never written for want of room). */
  private given = false;
  private lastRestoreTry = -Infinity;

  constructor(
    readonly file: string,
    readonly bytes: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True from a release() until the reserve is written again. */
  get isReleased(): boolean {
    return this.given;
  }

  /** True while the reserve file exists. */
  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Writes the reserve (at start and after recovery); false, with one warning, when there is
   * no room. A reserve file of the right size from an earlier run is kept as it is (no
   * rewrite of its megabytes at every start).
   */
  ensure(): boolean {
    if (this.bytes <= 0 || this.held) return this.held;
    if (this.existingSize() === this.bytes) {
      this.given = false;
      return (this.held = true);
    }
    const zeros = Buffer.alloc(Math.min(CHUNK, this.bytes));
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'w', 0o600);
      for (let left = this.bytes; left > 0; left -= zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, left));
      fsyncSync(fd);
      this.held = true;
      this.given = false;
    } catch (err) {
      this.log.warn({ file: this.file, bytes: this.bytes, err: (err as Error).message }, 'no room for the disk reserve; a full disk may not drain by itself, free space on the disk of store.dir');
      this.removeFile();
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return this.held;
  }

  /** Gives the reserve back to the disk; true when there was one to give. */
  release(): boolean {
    if (!this.held) return false;
    this.removeFile();
    this.held = false;
    this.given = true;
    this.log.warn({ file: this.file, bytes: this.bytes }, 'disk full: released the disk reserve so the outbox can drain; free space on the disk of store.dir');
    return true;
  }

  /** After a recovery: writes the reserve again once the disk has twice its size free (tried at most every 10 s). */
  restore(dir: string): void {
    if (this.held || this.bytes <= 0) return;
    const now = this.now();
    if (now - this.lastRestoreTry < 10_000) return;
    this.lastRestoreTry = now;
    try {
      const s = statfsSync(dir);
      if (s.bavail * s.bsize < 2 * this.bytes) return;
    } catch {
      return;
    }
    if (this.ensure()) this.log.info({ file: this.file, bytes: this.bytes }, 'disk reserve restored');
  }

  private existingSize(): number | undefined {
    try {
      return statSync(this.file).size;
    } catch {
      return undefined;
    }
  }

  private removeFile(): void {
    try {
      unlinkSync(this.file);
    } catch {
      // not there
    }
  }
}
