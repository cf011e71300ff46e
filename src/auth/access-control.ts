/**
 * Authentication and authorization as the broker and the other sources see it: one
 * immutable object built from `auth:` (password file, ACL file, delays), swapped whole by
 * `broker.setAccessControl` when the config is reloaded.
 *
 *   auth.password_file ─ readPasswordFile ──▶ PasswordChecker ─┐
 *   auth.acl_file ────── Acl.read ──────────▶ Acl ─────────────┼─▶ AccessControl
 *   auth.failure_delay, max_concurrent_checks ─────────────────┘
 */
import { dirname, resolve } from 'node:path';
import type { AuthConfig } from '../config/auth-schema.js';
import { OutpostError } from '../core/errors.js';
import { readPasswordFile, PasswordChecker } from './password-file.js';
import { throwFileProblems } from './file-problems.js';
import { fileAccessWarning, processIdentity, type ProcessIdentity } from './file-permissions.js';
import { readAuthFile } from './read-auth-file.js';
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
  /** Sentences to log as warnings where the access control is put in force (see loadAccessControl). */
  warnings?: readonly string[];
}

export class AccessControl {
  readonly passwords: PasswordVerifier | undefined;
  readonly acl: Acl | undefined;
  readonly failureDelayMs: number;
  readonly maxConcurrentChecks: number;
  /** What is worth a warning about the files read (others may read them, no users): log each at start and reload. */
  readonly warnings: readonly string[];

  constructor(o: AccessControlOptions = {}) {
    this.passwords = o.passwords;
    this.acl = o.acl;
    this.failureDelayMs = o.failureDelayMs ?? 1000;
    this.maxConcurrentChecks = o.maxConcurrentChecks ?? 4;
    this.warnings = o.warnings ?? [];
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
 * What is worth a warning but no refusal (a file others may read, a password file without
 * users) is in the result's `warnings`, for the caller to log at start and at each reload.
 */
export async function loadAccessControl(auth: AuthConfig, configFile?: string, deps: { identity?: ProcessIdentity } = {}): Promise<AccessControl> {
  const base = configFile === undefined ? process.cwd() : dirname(resolve(configFile));
  const passwordFile = auth.password_file === undefined ? undefined : resolve(base, auth.password_file);
  const aclFile = auth.acl_file === undefined ? undefined : resolve(base, auth.acl_file);
  const me = 'identity' in deps ? deps.identity : processIdentity();
  // Both files are read before anything is thrown: a missing password file must not hide
  // the ACL's bad lines (or the other way round), or a fix-and-retry round finds them later.
  const [passwordRead, aclRead] = await Promise.all([readAuthFile(passwordFile, 'auth.password_file'), readAuthFile(aclFile, 'auth.acl_file')]);
  const textOf = (r: typeof passwordRead) => (r === undefined || r instanceof OutpostError ? undefined : r);
  const passwordText = textOf(passwordRead);
  const aclText = textOf(aclRead);
  const users = passwordText !== undefined && passwordFile !== undefined ? readPasswordFile(passwordText.text, passwordFile) : undefined;
  const rules = aclText !== undefined && aclFile !== undefined ? Acl.read(aclText.text, aclFile) : undefined;
  // Every problem of both files at once, as the YAML config reports its own: one fix-and-retry round.
  const problems = (read: typeof passwordRead, found: { problems: string[] } | undefined) =>
    read instanceof OutpostError ? [read.message] : [...(read?.problem === undefined ? [] : [read.problem]), ...(found?.problems ?? [])];
  try {
    throwFileProblems({ file: passwordFile ?? '', problems: problems(passwordRead, users) }, { file: aclFile ?? '', problems: problems(aclRead, rules) });
  } catch (err) {
    // A missing file keeps its code (CONFIG_UNREADABLE), the other file's bad lines beside it.
    const missing = [passwordRead, aclRead].find((t) => t instanceof OutpostError);
    throw missing === undefined ? err : new OutpostError('CONFIG_UNREADABLE', (err as Error).message, { cause: missing.cause });
  }
  // Reading the ACL tells something only when it grants by client id (file-permissions.ts).
  const warnings = [
    passwordText?.ownership && passwordFile && fileAccessWarning('auth.password_file', passwordFile, passwordText.ownership, me, true, passwordText.dirs),
    aclText?.ownership && aclFile && fileAccessWarning('auth.acl_file', aclFile, aclText.ownership, me, rules?.acl.grantsByClientId ?? true, aclText.dirs),
  ].filter((w): w is string => typeof w === 'string');
  if (users !== undefined && users.users.size === 0) {
    // Accepted (`outpost passwd -D` of the last user leaves it so), but every user name is refused: worth a line.
    warnings.push(`auth.password_file ${passwordFile} has no users, so every client that gives a user name is refused; add one with \`outpost passwd ${passwordFile} USER\``);
  }
  const passwords = users === undefined ? undefined : new PasswordChecker(users.users);
  const acl = rules?.acl;
  return new AccessControl({ passwords, acl, failureDelayMs: auth.failure_delay, maxConcurrentChecks: auth.max_concurrent_checks, warnings });
}
