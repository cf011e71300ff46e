/**
 * Start-up failures of a state directory that this user cannot write, and which of them a
 * restart cannot fix.
 *
 * A directory (or a file in it) this user may not write (EACCES, EPERM: its owner or mode,
 * often left by a `sudo outpost run`), one on a read-only mount (EROFS: outside the unit's
 * writable paths, or a disk the kernel remounted read-only) and a file where the directory
 * should be (ENOTDIR) stay so until someone acts. They fail with STORE_NOT_WRITABLE, which
 * the CLI turns into exit code 2 and the unit lists in RestartPreventExitStatus=: systemd
 * leaves the unit failed with the sentence in the journal instead of restarting it every
 * 5 s for ever. Other errnos (ENOENT of a disk not mounted yet, EIO, ENOSPC) may pass, and
 * keep STORE_UNAVAILABLE (exit 1, restarted).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { OutpostError, type ErrorCode } from '../core/errors.js';

const LASTING = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR']);

/** The error code of a failure of store.dir with this errno (see above). */
export function stateDirCode(errno: string | undefined): ErrorCode {
  return errno !== undefined && LASTING.has(errno) ? 'STORE_NOT_WRITABLE' : 'STORE_UNAVAILABLE';
}

/**
 * One sentence for a state directory that cannot be used: `what` and `why` say what failed,
 * then what to do, with this process's user and the command for a permission problem.
 */
export function stateDirFailure(what: string, dir: string, why: string, errno: string | undefined, cause?: unknown): OutpostError {
  return new OutpostError(stateDirCode(errno), `${what} (${why}); ${whatToDo(dir, errno)}`, cause === undefined ? undefined : { cause });
}

function whatToDo(dir: string, errno: string | undefined): string {
  if (errno !== 'EACCES' && errno !== 'EPERM') return 'fix store.dir or its permissions';
  const { name, label } = runningUser();
  // Missing: a parent refused the mkdir; it is made by someone who may, for this user.
  const fix = existsSync(dir) ? `chown -R ${name} ${dir}` : `mkdir -p ${dir} && chown ${name} ${dir}`;
  return `${label} may not write there: give the directory to that user (${fix}) or set store.dir to one it can write`;
}

function runningUser(): { name: string; label: string } {
  const uid = process.getuid?.() ?? -1;
  try {
    const { username } = os.userInfo();
    return { name: username, label: `user ${username} (uid ${uid})` };
  } catch {
    return { name: String(uid), label: `uid ${uid}` }; // no passwd entry for it
  }
}
