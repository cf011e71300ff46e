import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { passwdCommand } from '../../src/auth/passwd-command.js';
import { parsePasswordFile, PasswordChecker } from '../../src/auth/password-file.js';
import { runCli, type CliDeps } from '../../src/cli.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-passwd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const FAST = { N: 1024, r: 8, p: 1 };

function run(file: string, user: string, del = false, password = 'secret') {
  const out: string[] = [];
  const err: string[] = [];
  const code = passwdCommand(file, user, del, {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    readPassword: async () => password,
    scrypt: FAST,
  });
  return code.then((c) => ({ code: c, out: out.join(''), err: err.join('') }));
}

const check = (file: string) => new PasswordChecker(parsePasswordFile(readFileSync(file, 'utf8'), file));

describe('outpost passwd', () => {
  it('adds users, changes a password, keeps comments, and leaves the file unreadable by others', async () => {
    const file = join(tmp, 'a');
    writeFileSync(file, '# site users\n');
    expect(await run(file, 'alice')).toEqual({ code: 0, out: `${file}: added alice\n`, err: '' });
    expect(await run(file, 'bob', false, 'hunter2')).toMatchObject({ code: 0 });
    expect(await run(file, 'alice', false, 'new one')).toEqual({ code: 0, out: `${file}: changed alice\n`, err: '' });
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n').map((l) => l.split(':')[0])).toEqual(['# site users', 'alice', 'bob', '']);
    expect(statSync(file).mode & 0o007).toBe(0); // its owner and group are kept (passwd-ownership.test.ts)
    expect(await check(file).verify('alice', 'new one')).toBe(true);
    expect(await check(file).verify('alice', 'secret')).toBe(false);
    expect(await check(file).verify('bob', 'hunter2')).toBe(true);
  });

  it('deletes a user with -D, and says so when the user is not there', async () => {
    const file = join(tmp, 'b');
    await run(file, 'alice');
    await run(file, 'bob');
    expect(await run(file, 'alice', true)).toEqual({ code: 0, out: `${file}: deleted alice\n`, err: '' });
    expect([...parsePasswordFile(readFileSync(file, 'utf8'), file).keys()]).toEqual(['bob']);
    expect(await run(file, 'alice', true)).toEqual({ code: 1, out: '', err: `outpost passwd: no user "alice" in ${file}\n` });
  });

  it('refuses an empty password, a bad user name and a malformed file, leaving the file alone', async () => {
    const file = join(tmp, 'c');
    writeFileSync(file, 'alice:oops\n');
    expect((await run(file, 'bob')).err).toMatch(new RegExp(`^${file}:1: expected user:`));
    expect((await run(join(tmp, 'd'), 'bob', false, '')).err).toBe('outpost passwd: empty password refused\n');
    expect((await run(join(tmp, 'd'), 'b:ob')).code).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe('alice:oops\n');
  });

  it('is a CLI command that needs the file and the user, and -D only applies to it', async () => {
    const err: string[] = [];
    const deps = { stdout: () => undefined, stderr: (t: string) => void err.push(t), process: {} as CliDeps['process'] } as CliDeps;
    expect(await runCli(['passwd', 'only-file'], deps)).toBe(2);
    expect(await runCli(['check', '-D', 'x.yaml'], deps)).toBe(2);
    expect(err).toEqual([
      'outpost: passwd needs the file and the user: outpost passwd [-D] FILE USER; see "outpost --help"\n',
      'outpost: option -D does not apply to "check"; see "outpost --help"\n',
    ]);
    const file = join(tmp, 'e');
    expect(await runCli(['passwd', file, 'carol'], { ...deps, readPassword: async () => 'pw' })).toBe(0);
    expect(await check(file).verify('carol', 'pw')).toBe(true);
  });

  it('runs as a real process reading the password from stdin', async () => {
    const file = join(tmp, 'f');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'passwd', file, 'dave'], { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.stdin.end('s3cret\n');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, output }).toEqual({ code: 0, output: `${file}: added dave\n` });
    expect(await check(file).verify('dave', 's3cret')).toBe(true);
  });
});
