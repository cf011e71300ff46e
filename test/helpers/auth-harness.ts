/**
 * A broker on in-memory duplex pairs with a password file and/or ACL in force, and
 * clients whose peer (address, refuseAnonymous, certificate identity) the test chooses.
 */
import { duplexPair } from 'node:stream';
import { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { PeerInfo } from '../../src/broker/connection.js';
import { AccessControl, type PasswordVerifier } from '../../src/auth/access-control.js';
import { Acl } from '../../src/auth/acl.js';
import { formatPasswordFile, hashPassword, parsePasswordFile, PasswordChecker } from '../../src/auth/password-file.js';
import { silentLog } from './broker-harness.js';
import { RawClient } from './raw-client.js';

/** Fast scrypt for tests (the production default costs 32 times more). */
export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

/** user NUL password → its line's hash: a file read again gives the same lines, so does this. */
const hashes = new Map<string, string>();

export async function passwordChecker(users: Record<string, string>): Promise<PasswordChecker> {
  const lines: [string, string][] = [];
  for (const [u, pw] of Object.entries(users)) {
    const key = `${u}\0${pw}`;
    let hash = hashes.get(key);
    if (hash === undefined) hashes.set(key, (hash = await hashPassword(pw, FAST_SCRYPT)));
    lines.push([u, hash]);
  }
  return new PasswordChecker(parsePasswordFile(formatPasswordFile(lines), 'passwd'));
}

export interface AccessSetup {
  users?: Record<string, string>;
  passwords?: PasswordVerifier;
  acl?: string;
  failureDelayMs?: number;
  maxConcurrentChecks?: number;
}

export async function accessControl(s: AccessSetup): Promise<AccessControl> {
  const passwords = s.passwords ?? (s.users !== undefined ? await passwordChecker(s.users) : undefined);
  return new AccessControl({
    passwords,
    acl: s.acl === undefined ? undefined : Acl.parse(s.acl, 'acl'),
    failureDelayMs: s.failureDelayMs ?? 50,
    maxConcurrentChecks: s.maxConcurrentChecks ?? 4,
  });
}

export interface AuthHarness {
  broker: Broker;
  client(version?: 3 | 4 | 5, peer?: Partial<PeerInfo>): RawClient;
  close(): Promise<void>;
}

export async function startAuthBroker(setup: AccessSetup, options: Partial<BrokerOptions> = {}): Promise<AuthHarness> {
  const broker = new Broker(options, { log: silentLog, access: await accessControl(setup) });
  let port = 20000;
  return {
    broker,
    client(version = 4, peer = {}) {
      const [a, b] = duplexPair();
      a.once('close', () => b.destroy());
      b.once('close', () => a.destroy());
      broker.handle(b, { transport: 'memory', remoteAddress: '10.0.0.2', remotePort: port++, ...peer });
      return new RawClient(a, version);
    },
    close: () => broker.close(),
  };
}
