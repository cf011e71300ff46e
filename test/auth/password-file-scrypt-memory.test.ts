/**
 * A password file line whose scrypt cost needs more memory than a Raspberry Pi can give to
 * a few checks at once is refused at start-up and by outpost check, with what it costs. It
 * was accepted: with N=2^20 r=8 (1 GiB per check; an unknown user costs as much as the first
 * entry) every CONNECT, even without a valid user name, took 1 GiB.
 */
import { describe, expect, it } from 'vitest';
import { hashPassword, parsePasswordFile, PasswordChecker } from '../../src/auth/password-file.js';

const line = (N: number, r: number) => `alice:$scrypt$${N}$${r}$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==\n`;

describe('the scrypt cost of a password file entry', () => {
  it.each([
    [2 ** 20, 8, 1024],
    [2 ** 17, 32, 512],
  ])('refuses N=%i r=%i, which needs %i MiB per check', (N, r, mib) => {
    expect(() => parsePasswordFile(line(N, r), '/etc/outpost/passwd')).toThrow(
      `/etc/outpost/passwd:1: scrypt N=${N} r=${r} needs ${mib} MiB per check, more than 256 MiB (outpost passwd writes N=32768 r=8: 32 MiB)`,
    );
  });

  it('accepts up to 256 MiB per check, and what outpost passwd writes', async () => {
    expect(parsePasswordFile(line(2 ** 18, 8), 'p').size).toBe(1);
    const users = parsePasswordFile(`bob:${await hashPassword('pw')}\n`, 'p');
    expect(await new PasswordChecker(users).verify('bob', 'pw')).toBe(true);
  });
});
