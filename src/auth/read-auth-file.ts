/**
 * Reads a password file or ACL named in `auth:`: its text, its mode and owner (for the
 * warning of file-permissions.ts), and a problem when it is no UTF-8 text at all. The mode
 * and owner are those of the file read (fstat of the open file), not of one a rename put
 * there in between.
 *
 * A Windows editor may save as UTF-16 (Notepad's "Unicode"): read as UTF-8 that gave one
 * "expected user:$scrypt$…" per line, none saying why. It is one problem saying so now. A
 * UTF-8 BOM and CRLF line ends are read as they are meant (the line parsers trim them).
 * A path naming a FIFO, a device or a file over MAX_AUTH_FILE_BYTES is one problem too,
 * found before it is opened or read (config/read-file.ts): a FIFO's open() blocked start-up
 * (and a reload) for ever, /dev/zero was read until memory ran out.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OutpostError } from '../core/errors.js';
import { isFileRefused, readBoundedFileStat, type FileRefused } from '../config/read-file.js';
import type { AuthFileKey, FileOwnership } from './file-permissions.js';

/** Larger than any password file or ACL a gateway has (10000 users: about 1.2 MiB). */
export const MAX_AUTH_FILE_BYTES = 64 * 2 ** 20;

export interface AuthFileText {
  text: string;
  /** Mode and owner of a regular file. */
  ownership?: FileOwnership;
  /** Mode and owner of each directory above it (its real path) up to /: who can reach it. */
  dirs?: FileOwnership[];
  /** Not text outpost can read (one `file: what is wrong; what to do` line); text is then ''. */
  problem?: string;
}

/** The file's text, undefined when none is named, or the error saying it cannot be read. */
export async function readAuthFile(file: string | undefined, key: AuthFileKey): Promise<AuthFileText | undefined | OutpostError> {
  if (file === undefined) return undefined;
  let bytes: Buffer;
  let ownership: FileOwnership;
  try {
    const read = readBoundedFileStat(file, MAX_AUTH_FILE_BYTES);
    bytes = read.bytes;
    ownership = { mode: read.stat.mode, uid: read.stat.uid, gid: read.stat.gid };
  } catch (err) {
    return isFileRefused(err) ? refused(err, file, key) : unreadable(file, key, err);
  }
  const problem = notText(bytes, file, 'save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)');
  const dirs = await directoriesAbove(file);
  return problem === undefined ? { text: bytes.toString('utf8'), ownership, dirs } : { text: '', ownership, dirs, problem };
}

/** The directories above the file's real path, up to /; [] (reachable, so warned about) when one cannot be looked at. */
async function directoriesAbove(file: string): Promise<FileOwnership[]> {
  try {
    const dirs: FileOwnership[] = [];
    for (let d = dirname(await realpath(file)); ; d = dirname(d)) {
      const st = await stat(d);
      dirs.push({ mode: st.mode, uid: st.uid, gid: st.gid });
      if (dirname(d) === d) return dirs;
    }
  } catch {
    return [];
  }
}

/** `file: what is wrong; fix` when the bytes are no UTF-8 text (UTF-16, NUL bytes). */
export function notText(bytes: Buffer, file: string, fix: string): string | undefined {
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  if (!utf16 && !bytes.includes(0)) return undefined;
  const what = utf16 ? 'is UTF-16 text (what Windows Notepad saves as "Unicode")' : 'holds NUL bytes, so it is not a text file (UTF-16 without a BOM, or a binary named by mistake)';
  return `${file}: the file ${what}; ${fix}`;
}

/** The problem to report for a file that is not a regular one or too large (a directory: its error). */
function refused(err: FileRefused, file: string, key: AuthFileKey): AuthFileText | OutpostError {
  if (err.what === 'a directory') return unreadable(file, key, Object.assign(new Error('EISDIR'), { code: 'EISDIR' }));
  const size = err.kind === 'too-large' ? ' (10000 users take about 1.2 MiB)' : '';
  return { text: '', problem: `${file}: the file ${err.reason}${size}; check that ${key} names the right file` };
}

function unreadable(file: string, key: AuthFileKey, err: unknown): OutpostError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  const how = key === 'auth.password_file' ? '`outpost passwd` writes password files' : 'config/acl.example shows the format';
  // The remedy follows the cause: "create it" is no help for a file that is there.
  const what =
    code === 'EACCES' || code === 'EPERM'
      ? `let the user outpost runs as read it (installed: chgrp outpost ${file}; chmod 0640 ${file})`
      : code === 'EISDIR'
        ? 'it is a directory: name the file in it'
        : `create it (${how}) or fix the path`;
  return new OutpostError('CONFIG_UNREADABLE', `${key} ${file} cannot be read (${code}); ${what}`, { cause: err });
}
