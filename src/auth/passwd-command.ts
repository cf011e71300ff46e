/**
 * `outpost passwd FILE USER` adds a user or changes their password; `-D` deletes the user.
 * Other lines (users, comments) are kept as they are; the file is replaced atomically
 * (written beside, then renamed) so the gateway never reads half a file.
 *
 * The new file gets the old one's owner, group and mode (less any access for others): run
 * with sudo, a file the service user reads (root:outpost 0640) must not become root's alone,
 * or the next reload or start refuses it. A new file gets mode 0640 and the group of its
 * directory (/etc/outpost is root:outpost).
 */
import { chmodSync, chownSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isFileRefused, readBoundedFile } from '../config/read-file.js';
import { dirname } from 'node:path';
import { isOutpostError } from '../core/errors.js';
import { MAX_AUTH_FILE_BYTES, notText } from './read-auth-file.js';
import { DEFAULT_SCRYPT, hashPassword, MAX_USER_NAME_BYTES, parsePasswordFile, USER_NAME, USER_NAME_RULE, type ScryptParams } from './password-file.js';

export interface PasswdDeps {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The new password (a prompt without echo, or the first line of stdin). */
  readPassword(): Promise<string>;
  /** Hash cost; tests use a cheap one. */
  scrypt?: ScryptParams;
}

/** Exit code: 0 done, 1 the user to delete is not there or the file cannot be written, 2 bad input (name, password, malformed file). */
export async function passwdCommand(file: string, user: string, del: boolean, deps: PasswdDeps): Promise<number> {
  if (!USER_NAME.test(user)) {
    deps.stderr(`outpost passwd: user name "${user}" ${USER_NAME_RULE}\n`);
    return 2;
  }
  if (Buffer.byteLength(user) > MAX_USER_NAME_BYTES) {
    deps.stderr(`outpost passwd: user name "${user.slice(0, 64)}…" is longer than the ${MAX_USER_NAME_BYTES} bytes an MQTT CONNECT can carry\n`);
    return 2;
  }
  let text = '';
  try {
    // Regular files of a sane size only: a FIFO or device named by mistake hung the command.
    const bytes = readBoundedFile(file, MAX_AUTH_FILE_BYTES);
    // A file a Windows editor saved as UTF-16: one line saying so, not one per line of it.
    const problem = notText(bytes, file, 'save it as UTF-8, then run this again');
    if (problem !== undefined) {
      deps.stderr(`outpost passwd: ${problem}\n`);
      return 2;
    }
    text = bytes.toString('utf8');
  } catch (err) {
    if (isFileRefused(err)) {
      deps.stderr(`outpost passwd: ${file} ${err.kind === 'too-large' ? err.reason : 'is not a regular file'}; name the password file\n`);
      return 2;
    }
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || del) {
      deps.stderr(`outpost passwd: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})\n`);
      return del ? 1 : 2;
    }
  }
  try {
    parsePasswordFile(text, file);
  } catch (err) {
    if (!isOutpostError(err, 'CONFIG_INVALID')) throw err;
    deps.stderr(`${err.message}\n`);
    return 2;
  }
  const lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  const at = lines.findIndex((l) => l.trim().startsWith(`${user}:`));
  if (del) {
    if (at < 0) {
      deps.stderr(`outpost passwd: no user "${user}" in ${file}\n`);
      return 1;
    }
    lines.splice(at, 1);
  } else {
    let password: string;
    try {
      password = await deps.readPassword();
    } catch (err) {
      deps.stderr(`outpost passwd: ${(err as Error).message}\n`);
      return 2;
    }
    if (password.length === 0) {
      deps.stderr('outpost passwd: empty password refused\n');
      return 2;
    }
    const line = `${user}:${await hashPassword(password, deps.scrypt ?? DEFAULT_SCRYPT)}`;
    if (at < 0) lines.push(line);
    else lines[at] = line;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const keep = ownership(file);
    writeFileSync(tmp, lines.length > 0 ? `${lines.join('\n')}\n` : '', { mode: 0o600 });
    try {
      chownSync(tmp, keep.uid, keep.gid);
    } catch {
      // Not root and not in that group: the file stays ours, as any file we write.
    }
    try {
      chmodSync(tmp, keep.mode);
    } catch {
      // A file system without modes (vfat): it has what writeFileSync gave it.
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    deps.stderr(`outpost passwd: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check that its directory exists and may be written (sudo)\n`);
    return 1;
  }
  deps.stdout(`${file}: ${del ? 'deleted' : at < 0 ? 'added' : 'changed'} ${user}\n`);
  return 0;
}

/** Owner, group and mode for the rewritten file: the existing one's (never readable by others), or a new one's. */
function ownership(file: string): { uid: number; gid: number; mode: number } {
  try {
    const st = statSync(file);
    return { uid: st.uid, gid: st.gid, mode: st.mode & 0o770 };
  } catch {
    const dir = statSync(dirname(file));
    return { uid: process.getuid?.() ?? -1, gid: dir.gid, mode: 0o640 };
  }
}
