import { describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import { formatPasswordFile, hashPassword, parseHash, parsePasswordFile, PasswordChecker } from '../../src/auth/password-file.js';

const FAST = { N: 1024, r: 8, p: 1 }; // tests only: the default cost is 32x this

function problem(text: string): string {
  try {
    parsePasswordFile(text, '/etc/outpost/passwd');
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected the file to be refused');
}

describe('password hashes', () => {
  it('are salted: the same password hashes differently twice, and both verify', async () => {
    const a = await hashPassword('secret', FAST);
    const b = await hashPassword('secret', FAST);
    expect(a).toMatch(/^\$scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    const checker = new PasswordChecker(parsePasswordFile(formatPasswordFile([['alice', a], ['bob', b]]), 'p'));
    expect(await checker.verify('alice', 'secret')).toBe(true);
    expect(await checker.verify('bob', Buffer.from('secret'))).toBe(true);
  });

  it('refuse a wrong password and an unknown user alike', async () => {
    const checker = new PasswordChecker(parsePasswordFile(`alice:${await hashPassword('secret', FAST)}\n`, 'p'));
    expect(await checker.verify('alice', 'Secret')).toBe(false);
    expect(await checker.verify('mallory', 'secret')).toBe(false);
    expect(await checker.verify('alice', '')).toBe(false);
  });

  it('take as long for an unknown user as for a wrong password', async () => {
    const checker = new PasswordChecker(parsePasswordFile(`alice:${await hashPassword('secret', { N: 16384, r: 8, p: 1 })}\n`, 'p'));
    await checker.verify('warm-up', 'x');
    const time = async (user: string) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 4; i++) await checker.verify(user, 'wrong');
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const wrong = await time('alice');
    const unknown = await time('nobody');
    expect(unknown / wrong).toBeGreaterThan(0.4); // an early return would be ~0
    expect(unknown / wrong).toBeLessThan(2.5);
  });
});

describe('a malformed password file', () => {
  it.each([
    ['alice', '/etc/outpost/passwd:1: expected user:$scrypt$N$r$p$salt$hash'],
    ['alice:plain', '/etc/outpost/passwd:1: expected user:$scrypt$N$r$p$salt$hash (written by `outpost passwd`)'],
    ['# users\n\nalice:$scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==', '/etc/outpost/passwd:3: scrypt N must be a power of two from 2 to 1048576, got 1000'],
    ['alice:$scrypt$1024$8$1$!!$aGFzaGhhc2hoYXNoaGFzaA==', '/etc/outpost/passwd:1: salt is not base64'],
    ['al ice:$scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==', '/etc/outpost/passwd:1: user name "al ice" must not contain spaces or ":" nor start with "#" (a comment in the file)'],
  ])('%j stops start-up with file:line and what is wrong', (text, message) => {
    expect(problem(text)).toBe(`${message}; fix or delete the line, then set the user's password with \`outpost passwd /etc/outpost/passwd USER\` (it refuses a file with bad lines)`);
  });

  it('names a user that appears twice', () => {
    const line = 'alice:$scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==';
    expect(problem(`${line}\n${line}\n`)).toMatch(/^\/etc\/outpost\/passwd:2: user "alice" appears twice/);
  });

  it('reports every malformed line, each with its line and what to do, not only the first', () => {
    const good = 'bob:$scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==';
    const fix = "; fix or delete the line, then set the user's password with `outpost passwd /etc/outpost/passwd USER` (it refuses a file with bad lines)";
    expect(problem(`# users\nalice:plain\n${good}\nal ice:x\n${good}\ncarol:$scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==\n`).split('\n')).toEqual([
      `/etc/outpost/passwd:2: expected user:$scrypt$N$r$p$salt$hash (written by \`outpost passwd\`)${fix}`,
      `/etc/outpost/passwd:4: user name "al ice" must not contain spaces or ":" nor start with "#" (a comment in the file)${fix}`,
      `/etc/outpost/passwd:5: user "bob" appears twice${fix}`,
      `/etc/outpost/passwd:6: scrypt N must be a power of two from 2 to 1048576, got 1000${fix}`,
    ]);
  });

  it('counts the problems past the fiftieth of a file that is not a password file at all', () => {
    const lines = problem(Array.from({ length: 60 }, (_, i) => `junk ${i}`).join('\n')).split('\n');
    expect(lines).toHaveLength(51);
    expect(lines[49]).toMatch(/^\/etc\/outpost\/passwd:50: /);
    expect(lines[50]).toBe('/etc/outpost/passwd: 10 more problems not shown; fix the ones above first');
  });

  it('accepts comments, blank lines and CRLF line ends', () => {
    const users = parsePasswordFile('# outpost users\r\n\r\nalice:$scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==\r\n', 'p');
    expect([...users.keys()]).toEqual(['alice']);
    expect(typeof parseHash('$scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==')).toBe('object');
  });
});
