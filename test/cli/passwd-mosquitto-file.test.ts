/**
 * A password file written by mosquitto_passwd, named in auth.password_file by someone moving
 * from mosquitto (whose ACL files outpost reads): each line was refused as "expected
 * user:$scrypt$..." with the advice to rewrite it with `outpost passwd`, which refuses a file
 * with bad lines, so the advice led nowhere. Now the line says what it is, and the advice
 * (delete the line, then `outpost passwd`) works.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { passwdCommand } from '../../src/auth/passwd-command.js';
import { parsePasswordFile, PasswordChecker } from '../../src/auth/password-file.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-mosq-passwd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function mosquittoPasswd(file: string, users: Record<string, string>): string {
  let first = true;
  for (const [u, pw] of Object.entries(users)) {
    execFileSync('mosquitto_passwd', [...(first ? ['-c'] : []), '-b', file, u, pw]);
    first = false;
  }
  return readFileSync(file, 'utf8');
}

describe('a password file written by mosquitto_passwd', () => {
  it('is refused by outpost check with one line per user saying it is a mosquitto hash, and what to do', async () => {
    const passwd = join(tmp, 'passwd');
    mosquittoPasswd(passwd, { alice: 'apw', bob: 'bpw' });
    const file = join(tmp, 'outpost.yaml');
    writeFileSync(file, 'auth:\n  password_file: passwd\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    expect(result.err.split('\n').filter(Boolean)).toEqual([1, 2].map((n) =>
      `${passwd}:${n}: a mosquitto_passwd hash ($7$), which outpost does not read; fix or delete the line, then set the user's password with \`outpost passwd ${passwd} USER\` (it refuses a file with bad lines)`,
    ));
  });

  it('names the $6$ hashes of older mosquitto_passwd too', () => {
    expect(() => parsePasswordFile('carol:$6$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==\n', 'p')).toThrow(/^p:1: a mosquitto_passwd hash \(\$6\$\), which outpost does not read/);
  });

  it('becomes an outpost password file by following that advice: delete the lines, then outpost passwd each user', async () => {
    const passwd = join(tmp, 'passwd2');
    mosquittoPasswd(passwd, { alice: 'apw' });
    const deps = (pw: string) => ({ stdout: () => undefined, stderr: () => undefined, readPassword: async () => pw, scrypt: { N: 1024, r: 8, p: 1 } });
    expect(await passwdCommand(passwd, 'alice', false, deps('apw'))).toBe(2); // refused while the line is there
    writeFileSync(passwd, '');
    expect(await passwdCommand(passwd, 'alice', false, deps('apw'))).toBe(0);
    const checker = new PasswordChecker(parsePasswordFile(readFileSync(passwd, 'utf8'), passwd));
    expect(await checker.verify('alice', 'apw')).toBe(true);
  });
});
