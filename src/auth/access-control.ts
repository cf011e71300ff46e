/**
 * Authentication and authorization as the broker and the other sources see it: one
 * immutable object built from `auth:` (password file, ACL file, delays), swapped whole by
 * `broker.setAccessControl` when the config is reloaded.
 *
 *   auth.password_file ─ parsePasswordFile ─▶ PasswordChecker ─┐
 *   auth.acl_file ────── Acl.parse ─────────▶ Acl ─────────────┼─▶ AccessControl
 *   auth.failure_delay, max_concurrent_checks ─────────────────┘
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { AuthConfig } from '../config/auth-schema.js';
import { OutpostError } from '../core/errors.js';
import { parsePasswordFile, PasswordChecker } from './password-file.js';
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
 * malformed file throws an OutpostError whose message is one sentence with file:line.
 */
export async function loadAccessControl(auth: AuthConfig, configFile?: string): Promise<AccessControl> {
  const base = configFile === undefined ? process.cwd() : dirname(resolve(configFile));
  let passwords: PasswordChecker | undefined;
  let acl: Acl | undefined;
  if (auth.password_file !== undefined) {
    const file = resolve(base, auth.password_file);
    passwords = new PasswordChecker(parsePasswordFile(await readText(file, 'auth.password_file'), file));
  }
  if (auth.acl_file !== undefined) {
    const file = resolve(base, auth.acl_file);
    acl = Acl.parse(await readText(file, 'auth.acl_file'), file);
  }
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
