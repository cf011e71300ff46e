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
  let users: ReturnType<typeof readPasswordFile> | undefined;
  let rules: ReturnType<typeof Acl.read> | undefined;
  const passwordFile = auth.password_file === undefined ? undefined : resolve(base, auth.password_file);
  const aclFile = auth.acl_file === undefined ? undefined : resolve(base, auth.acl_file);
  if (passwordFile !== undefined) users = readPasswordFile(await readText(passwordFile, 'auth.password_file'), passwordFile);
  if (aclFile !== undefined) rules = Acl.read(await readText(aclFile, 'auth.acl_file'), aclFile);
  // Every problem of both files at once, as the YAML config reports its own: one fix-and-retry round.
  throwFileProblems({ file: passwordFile ?? '', problems: users?.problems ?? [] }, { file: aclFile ?? '', problems: rules?.problems ?? [] });
  const passwords = users === undefined ? undefined : new PasswordChecker(users.users);
  const acl = rules?.acl;
  return new AccessControl({ passwords, acl, failureDelayMs: auth.failure_delay, maxConcurrentChecks: auth.max_concurrent_checks });
}

async function readText(file: string, key: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const how = key === 'auth.password_file' ? '`outpost passwd` writes password files' : 'config/acl.example shows the format';
    throw new OutpostError('CONFIG_UNREADABLE', `${key} ${file} cannot be read (${code}); create it (${how}) or fix the path`, { cause: err });
  }
}
