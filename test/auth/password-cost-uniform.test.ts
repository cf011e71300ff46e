/**
 * A password file whose entries have different scrypt costs (users hashed by an older
 * version, or by hand with a higher N) must not let the time of a refusal tell a user name:
 * an unknown name was checked with the first entry's cost, so a file whose first entry was
 * cheaper than others showed "no such user" as faster than a wrong password for those users.
 *
 * The checker's derivation is injected to record the settings each check paid for: with
 * mixed costs every refusal pays one derivation shaped like the dearest entry and one like
 * the cheapest (same work, same memory shape), a right password only its own entry.
 */
import { scrypt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatPasswordFile, hashPassword, parsePasswordFile, PasswordChecker, scryptWork, topUp, type Derive, type ScryptParams } from '../../src/auth/password-file.js';

const CHEAP = { N: 1024, r: 8, p: 1 };
const DEAR = { N: 4096, r: 8, p: 1 };

function recorder(): { derive: Derive; calls: ScryptParams[]; take(): ScryptParams[] } {
  const calls: ScryptParams[] = [];
  const derive: Derive = (password, salt, params, keylen) => {
    calls.push({ N: params.N, r: params.r, p: params.p });
    return new Promise((resolve, reject) =>
      scrypt(password, salt, keylen, { ...params, maxmem: 256 * params.N * params.r * params.p + 2 ** 20 }, (err, key) => (err ? reject(err) : resolve(key))),
    );
  };
  return { derive, calls, take: () => calls.splice(0) };
}

const work = (calls: ScryptParams[]) => calls.reduce((sum, c) => sum + scryptWork(c), 0);

async function mixedFile(): Promise<Map<string, import('../../src/auth/password-file.js').PasswordEntry>> {
  // The first entry is the cheap one: the case the old dummy got wrong.
  return parsePasswordFile(
    formatPasswordFile([
      ['alice', await hashPassword('alice-pw', CHEAP)],
      ['bob', await hashPassword('bob-pw', DEAR)],
      ['carol', await hashPassword('carol-pw', CHEAP)],
    ]),
    'passwd',
  );
}

describe('a refused password check in a file with mixed scrypt costs', () => {
  it('costs one dear and one cheap derivation for an unknown user, a wrong password of a cheap entry and one of the dear entry alike', async () => {
    const rec = recorder();
    const checker = new PasswordChecker(await mixedFile(), { derive: rec.derive });
    const refusals: [string, string][] = [['mallory', 'x'], ['alice', 'wrong'], ['bob', 'wrong'], ['carol', ''], ['', 'x']];
    const byN = (a: ScryptParams, b: ScryptParams) => a.N - b.N;
    for (const [user, pw] of refusals) {
      expect(await checker.verify(user, pw)).toBe(false);
      expect({ user, paid: rec.take().sort(byN) }).toEqual({ user, paid: [CHEAP, DEAR] });
    }
  });

  it('checks an unknown user with the dearest entry settings first, not the first entry', async () => {
    const rec = recorder();
    const checker = new PasswordChecker(await mixedFile(), { derive: rec.derive });
    await checker.verify('mallory', 'x');
    expect(rec.take()[0]).toEqual(DEAR);
  });

  it('tops a wrong password of an entry between the cheapest and the dearest up to the same work', async () => {
    const rec = recorder();
    const MID = { N: 2048, r: 8, p: 1 };
    const users = parsePasswordFile(formatPasswordFile([['alice', await hashPassword('a', CHEAP)], ['bob', await hashPassword('b', DEAR)], ['dave', await hashPassword('d', MID)]]), 'passwd');
    const checker = new PasswordChecker(users, { derive: rec.derive });
    for (const user of ['dave', 'alice', 'bob', 'nobody']) {
      expect(await checker.verify(user, 'wrong')).toBe(false);
      const paid = rec.take();
      expect({ user, work: work(paid) }).toEqual({ user, work: scryptWork(DEAR) + scryptWork(CHEAP) });
      for (const p of paid) expect(p.N * p.r).toBeLessThanOrEqual(DEAR.N * DEAR.r);
    }
  });

  it('makes a right password pay only its own entry', async () => {
    const rec = recorder();
    const checker = new PasswordChecker(await mixedFile(), { derive: rec.derive });
    expect(await checker.verify('alice', 'alice-pw')).toBe(true);
    expect(rec.take()).toEqual([CHEAP]);
    expect(await checker.verify('bob', 'bob-pw')).toBe(true);
    expect(rec.take()).toEqual([DEAR]);
  });

  it('pays no top-up when every entry has the same cost', async () => {
    const rec = recorder();
    const users = parsePasswordFile(formatPasswordFile([['alice', await hashPassword('a', CHEAP)], ['bob', await hashPassword('b', CHEAP)]]), 'passwd');
    const checker = new PasswordChecker(users, { derive: rec.derive });
    expect(await checker.verify('alice', 'wrong')).toBe(false);
    expect(rec.take()).toEqual([CHEAP]);
    expect(await checker.verify('nobody', 'wrong')).toBe(false);
    expect(rec.take()).toEqual([CHEAP]);
  });
});

describe('the top-up of a cheaper entry', () => {
  it.each([
    [2, 2 ** 15 * 8],
    [2 ** 15 * 8 - 1024 * 8, 2 ** 15 * 8],
    [2 ** 18 * 8 * 16 - 2 ** 10 * 3, 2 ** 18 * 8],
    [2 ** 14 * 3 * 2, 2 ** 14 * 3],
    [6, 2],
  ])('adds up to work %i with no derivation needing more memory than N·r = %i', (w, maxNr) => {
    const parts = topUp(w, maxNr);
    expect(work(parts)).toBe(w);
    for (const p of parts) {
      expect(p.N).toBeGreaterThanOrEqual(2);
      expect(p.N & (p.N - 1)).toBe(0);
      expect(p.r).toBeLessThanOrEqual(8);
      expect(p.N * p.r).toBeLessThanOrEqual(Math.max(2, maxNr));
    }
  });

  it('is nothing for the dearest entry itself', () => {
    expect(topUp(0, 2 ** 15 * 8)).toEqual([]);
  });
});
