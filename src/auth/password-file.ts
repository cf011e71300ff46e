/**
 * The password file: one `user:$scrypt$N$r$p$salt$hash` line per user (salt and hash in
 * base64), written by `outpost passwd`, read at start-up. Blank lines and `#` comments are
 * ignored. Malformed lines stop start-up with file:line and what is wrong, each of them.
 *
 * Verification is salted scrypt (node:crypto, off the main thread) with a constant-time
 * compare; every refused check costs the same (see PasswordChecker), so "no such user" and
 * "wrong password" take the same time, whatever each entry's cost.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { throwFileProblems } from './file-problems.js';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface PasswordEntry extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

/** Cost of new hashes: N=2^15, r=8 (32 MiB, ~50 ms on a Raspberry Pi 4 core). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };
const KEY_LENGTH = 32;
/** Memory one verification may take (4 at once by default: 1 GiB on a 1 GB Pi would not do). */
const MAX_SCRYPT_MIB = 256;
const SALT_LENGTH = 16;
export const USER_NAME = /^[^\s:#][^\s:]*$/;
/** The longest user name a CONNECT can carry (MQTT §1.5.4: a UTF-8 string of at most 65535 octets). */
export const MAX_USER_NAME_BYTES = 65535;
/** What USER_NAME asks, as a sentence for a name it refuses. */
export const USER_NAME_RULE = 'must not contain spaces or ":" nor start with "#" (a comment in the file)';

function derive(password: string | Buffer, salt: Buffer, { N, r, p }: ScryptParams, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `$scrypt$N$r$p$salt$hash` for a new password, with a fresh random salt. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const hash = await derive(password, salt, params, KEY_LENGTH);
  return `$scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Parses a `$scrypt$…` field; a string saying what is wrong when it is not one. */
export function parseHash(field: string): PasswordEntry | string {
  const parts = field.split('$');
  // mosquitto_passwd writes $6$ (salted SHA-512) and $7$ (PBKDF2-SHA512) hashes: outpost
  // verifies scrypt only, so the way over is a new password for that user.
  if (/^\$[67]\$/.test(field)) return `a mosquitto_passwd hash ($${parts[1]}$), which outpost does not read`;
  if (parts.length !== 7 || parts[0] !== '' || parts[1] !== 'scrypt') return 'expected user:$scrypt$N$r$p$salt$hash (written by `outpost passwd`)';
  const [N, r, p] = [Number(parts[2]), Number(parts[3]), Number(parts[4])];
  if (!Number.isInteger(N) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0) return `scrypt N must be a power of two from 2 to 1048576, got ${parts[2]}`;
  if (!Number.isInteger(r) || r < 1 || r > 32) return `scrypt r must be 1 to 32, got ${parts[3]}`;
  if (!Number.isInteger(p) || p < 1 || p > 16) return `scrypt p must be 1 to 16, got ${parts[4]}`;
  // Each check takes 128·N·r bytes, max_concurrent_checks of them at once, and a refused one
  // takes the dearest entry's: N=2^20 r=8 (1 GiB) had every CONNECT, even of an unknown user, take 1 GiB: a few at once and the OOM killer stops the gateway.
  const mib = (128 * N * r) / 2 ** 20;
  if (mib > MAX_SCRYPT_MIB) return `scrypt N=${N} r=${r} needs ${mib} MiB per check, more than ${MAX_SCRYPT_MIB} MiB (outpost passwd writes N=${DEFAULT_SCRYPT.N} r=${DEFAULT_SCRYPT.r}: ${(128 * DEFAULT_SCRYPT.N * DEFAULT_SCRYPT.r) / 2 ** 20} MiB)`;
  const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!b64.test(parts[5]!)) return 'salt is not base64';
  if (!b64.test(parts[6]!)) return 'hash is not base64';
  const salt = Buffer.from(parts[5]!, 'base64');
  const hash = Buffer.from(parts[6]!, 'base64');
  if (salt.length < 8) return `salt must be at least 8 bytes, got ${salt.length}`;
  if (hash.length < 16 || hash.length > 64) return `hash must be 16 to 64 bytes, got ${hash.length}`;
  return { N, r, p, salt, hash };
}

/** The users of a password file's text; throws `file:line: what is wrong` for every bad line (one line each). */
export function parsePasswordFile(text: string, file: string): Map<string, PasswordEntry> {
  const { users, problems } = readPasswordFile(text, file);
  throwFileProblems({ file, problems });
  return users;
}

/** The users of the good lines, and one `file:line: what is wrong; what to do` per bad line. */
export function readPasswordFile(text: string, file: string): { users: Map<string, PasswordEntry>; problems: string[] } {
  const users = new Map<string, PasswordEntry>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const what = lineProblem(line, users);
    if (typeof what === 'string') {
      problems.push(`${file}:${i + 1}: ${what}; fix or delete the line, then set the user's password with \`outpost passwd ${file} USER\` (it refuses a file with bad lines)`);
      return;
    }
    users.set(what.user, what.entry);
  });
  return { users, problems };
}

function lineProblem(line: string, users: ReadonlyMap<string, PasswordEntry>): string | { user: string; entry: PasswordEntry } {
  const colon = line.indexOf(':');
  if (colon <= 0) return 'expected user:$scrypt$N$r$p$salt$hash';
  const user = line.slice(0, colon);
  // Quoted at most 64 characters: a line of junk is not repeated whole into the log.
  const shown = user.length > 64 ? `${user.slice(0, 64)}…` : user;
  if (!USER_NAME.test(user)) return `user name "${shown}" ${USER_NAME_RULE}`;
  // A CONNECT carries at most 65535 octets of user name (MQTT §1.5.4): such a user could never log in.
  const bytes = Buffer.byteLength(user);
  if (bytes > MAX_USER_NAME_BYTES) return `user name "${shown}" is ${bytes} bytes long, more than the ${MAX_USER_NAME_BYTES} an MQTT CONNECT can carry`;
  if (users.has(user)) return `user "${shown}" appears twice`;
  const entry = parseHash(line.slice(colon + 1));
  return typeof entry === 'string' ? entry : { user, entry };
}

/** The file text for these users, one line each, in the given order. */
export function formatPasswordFile(lines: [user: string, hash: string][]): string {
  return lines.map(([u, h]) => `${u}:${h}\n`).join('');
}

/** Derives a key with scrypt; PasswordChecker takes another one in tests to see the costs it pays. */
export type Derive = (password: string | Buffer, salt: Buffer, params: ScryptParams, keylen: number) => Promise<Buffer>;

/** scrypt's work for these settings, in units of one N=1 r=1 p=1 mix (time goes with N·r·p). */
export function scryptWork({ N, r, p }: ScryptParams): number {
  return N * r * p;
}

/**
 * Derivations whose work adds up to `work` (even: every entry's N is at least 2), none
 * taking more memory than N·r = `maxNr` (the dearest entry's): the top-up that makes the
 * refusal of an entry whose cost is neither the dearest nor the cheapest cost what every
 * other refusal does (PasswordChecker).
 */
export function topUp(work: number, maxNr: number): ScryptParams[] {
  // The largest power of two the memory allows, at least 2 (N ≥ 2).
  const cap = Math.max(2, 2 ** Math.floor(Math.log2(maxNr)));
  const out: ScryptParams[] = [];
  for (let k = 1; 2 ** k <= work; k++) {
    if (Math.floor(work / 2 ** k) % 2 === 0) continue;
    // N·r·p = 2^k with N ≥ 2, r ≤ 8 (scrypt needs N < 2^(16·r): r=8 allows any N here) and
    // N·r ≤ cap; what is left goes to p (lanes run one after the other: time, not memory).
    const nr = Math.min(2 ** k, cap);
    const r = Math.min(8, nr / 2);
    out.push({ N: nr / r, r, p: 2 ** k / nr });
  }
  return out;
}

/**
 * A checker over a parsed file: a refused check costs the same whoever it names.
 *
 * Entries may have different costs (hashed by different versions or settings). When they
 * do, every refusal pays one derivation shaped like the dearest entry and one like the
 * cheapest: a wrong password for a cheap entry is followed by a throw-away dear one, for a
 * dear entry by a cheap one, an unknown user gets both. Same work and same memory shape
 * (scrypt's time per unit grows with its memory, past the CPU caches), so the time of a
 * refusal tells no user name, neither an unknown one nor one hashed at a cost of its own.
 * An entry between the two is topped up to the same work. A right password pays only its
 * entry, and a file whose entries all cost the same pays nothing more for a refusal.
 */
export class PasswordChecker {
  /** Dummy entries (random salt and hash: no password derives to them) of the dearest and cheapest settings. */
  private readonly dearest: PasswordEntry;
  private readonly cheapest: PasswordEntry;
  private readonly derive: Derive;

  constructor(
    private readonly users: Map<string, PasswordEntry>,
    deps: { derive?: Derive } = {},
  ) {
    this.derive = deps.derive ?? derive;
    let dear: PasswordEntry | undefined;
    let cheap: PasswordEntry | undefined;
    for (const e of users.values()) {
      if (dear === undefined || scryptWork(e) > scryptWork(dear)) dear = e;
      if (cheap === undefined || scryptWork(e) < scryptWork(cheap)) cheap = e;
    }
    const dummy = (e: PasswordEntry | undefined): PasswordEntry => ({ ...(e ?? DEFAULT_SCRYPT), salt: randomBytes(SALT_LENGTH), hash: randomBytes(e?.hash.length ?? KEY_LENGTH) });
    this.dearest = dummy(dear);
    this.cheapest = scryptWork(cheap ?? DEFAULT_SCRYPT) === scryptWork(this.dearest) ? this.dearest : dummy(cheap);
  }

  get size(): number {
    return this.users.size;
  }

  credential(user: string): string | undefined {
    const e = this.users.get(user);
    return e === undefined ? undefined : `${e.N}$${e.r}$${e.p}$${e.salt.toString('base64')}$${e.hash.toString('base64')}`;
  }

  async verify(user: string, password: Buffer | string): Promise<boolean> {
    const known = this.users.get(user);
    const entry = known ?? this.dearest;
    const key = await this.derive(password, entry.salt, entry, entry.hash.length);
    if (timingSafeEqual(key, entry.hash) && known !== undefined) return true;
    for (const params of this.rest(scryptWork(entry))) await this.derive(password, entry.salt, params, KEY_LENGTH);
    return false;
  }

  /** What a refusal pays after a first derivation of `done` work: up to one dear plus one cheap (nothing when all cost the same). */
  private rest(done: number): ScryptParams[] {
    const { dearest: dear, cheapest: cheap } = this;
    if (dear === cheap) return topUp(scryptWork(dear) - done, dear.N * dear.r);
    const left = scryptWork(dear) + scryptWork(cheap) - done;
    for (const e of [dear, cheap]) if (scryptWork(e) === left) return [{ N: e.N, r: e.r, p: e.p }];
    return topUp(left, dear.N * dear.r);
  }
}
