/**
 * Authentication and authorization as the broker and the other sources see it: one
 * immutable object built from `auth:` (password file, ACL file, delays), swapped whole by
 * `broker.setAccessControl` when the config is reloaded.
 *
 *   auth.password_file ─ readPasswordFile ──▶ PasswordChecker ─┐
 *   auth.acl_file ────── Acl.read ──────────▶ Acl ─────────────┼─▶ AccessControl
 *   auth.failure_delay, max_concurrent_checks ─────────────────┘
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { AuthConfig } from '../config/auth-schema.js';
import { OutpostError } from '../core/errors.js';
import { readPasswordFile, PasswordChecker } from './password-file.js';
import { throwFileProblems } from './file-problems.js';
import { Acl, ALLOW_ALL, type Grants, type Subject } from './acl.js';

export type { Grants, Subject, ReadAccess } from './acl.js';

/** Checks a user name and password (PasswordChecker: salted scrypt, same cost for unknown users). */
export interface PasswordVerifier {
  verify(user: string, password: Buffer | string): Promise<boolean>;
  /**
   * The user's entry as written (salt and hash), undefined for a user not in the file: a
   * reload compares it to tell a user deleted or given a new password from one left alone.
   */
  credential?(user: string): string | undefined;
}

export interface AccessControlOptions {
  passwords?: PasswordVerifier;
  acl?: Acl;
  /** Delay before a refused password is answered, in ms. */
  failureDelayMs?: number;
  maxConcurrentChecks?: number;
}

export class AccessControl {
  readonly passwords: PasswordVerifier | undefined;
  readonly acl: Acl | undefined;
  readonly failureDelayMs: number;
  readonly maxConcurrentChecks: number;

  constructor(o: AccessControlOptions = {}) {
    this.passwords = o.passwords;
    this.acl = o.acl;
    this.failureDelayMs = o.failureDelayMs ?? 1000;
    this.maxConcurrentChecks = o.maxConcurrentChecks ?? 4;
  }

  /** Whether CONNECT user names are checked against a password file. */
  get authenticates(): boolean {
    return this.passwords !== undefined;
  }

  /**
   * Whether a client that `before` authenticated by password as `user` may stay connected
   * under this access control: not when its user was deleted from the password file or
   * given another password (as mosquitto re-checks connected clients on reload). A file
   * no longer configured checks nobody, so everyone stays.
   */
  keepsPasswordUser(user: string, before: AccessControl): boolean {
    if (this.passwords === undefined) return true;
    const now = this.passwords.credential?.(user);
    if (now === undefined) return this.passwords.credential === undefined;
    return before.passwords?.credential?.(user) === now;
  }

  /** What this subject may read and write; everything when no ACL file is configured. */
  grantsFor(subject: Subject): Grants {
    if (this.acl === undefined || subject.kind === 'system') return ALLOW_ALL;
    return this.acl.grantsFor(subject);
  }
}

/** No password file, no ACL: the behaviour without `auth.password_file` / `auth.acl_file`. */
export const OPEN_ACCESS = new AccessControl();

/**
 * Reads the files named in `auth:` (relative to the config file's directory). A missing or
 * malformed file throws an OutpostError: one sentence with file:line per problem, those of both files.
 */
export async function loadAccessControl(auth: AuthConfig, configFile?: string): Promise<AccessControl> {
  const base = configFile === undefined ? process.cwd() : dirname(resolve(configFile));
  const passwordFile = auth.password_file === undefined ? undefined : resolve(base, auth.password_file);
  const aclFile = auth.acl_file === undefined ? undefined : resolve(base, auth.acl_file);
  // Both files are read before anything is thrown: a missing password file must not hide
  // the ACL's bad lines (or the other way round), or a fix-and-retry round finds them later.
  const [passwordText, aclText] = await Promise.all([readText(passwordFile, 'auth.password_file'), readText(aclFile, 'auth.acl_file')]);
  const users = typeof passwordText === 'string' && passwordFile !== undefined ? readPasswordFile(passwordText, passwordFile) : undefined;
  const rules = typeof aclText === 'string' && aclFile !== undefined ? Acl.read(aclText, aclFile) : undefined;
  // Every problem of both files at once, as the YAML config reports its own: one fix-and-retry round.
  const problems = (text: string | undefined | OutpostError, found: { problems: string[] } | undefined) => (text instanceof OutpostError ? [text.message] : found?.problems ?? []);
  try {
    throwFileProblems({ file: passwordFile ?? '', problems: problems(passwordText, users) }, { file: aclFile ?? '', problems: problems(aclText, rules) });
  } catch (err) {
    // A missing file keeps its code (CONFIG_UNREADABLE), the other file's bad lines beside it.
    const missing = [passwordText, aclText].find((t) => t instanceof OutpostError);
    throw missing === undefined ? err : new OutpostError('CONFIG_UNREADABLE', (err as Error).message, { cause: missing.cause });
  }
  const passwords = users === undefined ? undefined : new PasswordChecker(users.users);
  const acl = rules?.acl;
  return new AccessControl({ passwords, acl, failureDelayMs: auth.failure_delay, maxConcurrentChecks: auth.max_concurrent_checks });
}

/** The file's text, undefined when none is named, or the error saying it cannot be read. */
async function readText(file: string | undefined, key: string): Promise<string | undefined | OutpostError> {
  if (file === undefined) return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
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
}
