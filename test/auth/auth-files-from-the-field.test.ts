/**
 * Password files and ACLs as field users leave them: edited on Windows (CRLF line ends, a
 * UTF-8 BOM, or saved as UTF-16 "Unicode"), with trailing blanks, or with a line of junk.
 *
 * Compared with Mosquitto 2.0.11 on a mosquitto_passwd file given the same edits: CRLF,
 * trailing blanks, comments and blank lines are read there as here; Mosquitto takes a BOM
 * as part of the first user name (that user can no longer log in, silently), outpost
 * reads the name meant. A user name longer than 65535 bytes is skipped by Mosquitto with
 * "username too long"; outpost took it (nobody could ever log in as it), now it is a bad
 * line whose name is quoted short. A UTF-16 file gave one puzzling line per line of it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAccessControl } from '../../src/auth/access-control.js';
import { passwdCommand } from '../../src/auth/passwd-command.js';
import { hashPassword, readPasswordFile } from '../../src/auth/password-file.js';
import { authSchema } from '../../src/config/auth-schema.js';
import { isOutpostError } from '../../src/core/errors.js';
import { startGateway, within } from '../helpers/gateway-fixture.js';

const FAST = { N: 1024, r: 8, p: 1 };
const dir = mkdtempSync(join(tmpdir(), 'outpost-auth-field-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The CONFIG_INVALID / CONFIG_UNREADABLE message loading these auth files gives (or '' when they load). */
async function loadProblem(auth: { password_file?: string; acl_file?: string }): Promise<string> {
  try {
    await loadAccessControl(authSchema.parse(auth), join(dir, 'outpost.yaml'));
    return '';
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID') || isOutpostError(err, 'CONFIG_UNREADABLE')) return err.message;
    throw err;
  }
}

describe('a password file saved by a Windows editor', () => {
  it('as UTF-16 ("Unicode") is refused with one line saying so and to save it as UTF-8', async () => {
    const file = join(dir, 'passwd-utf16');
    const text = `\uFEFFalice:${await hashPassword('a', FAST)}\r\nbob:${await hashPassword('b', FAST)}\r\n`;
    writeFileSync(file, Buffer.from(text, 'utf16le'), { mode: 0o600 });
    expect(await loadProblem({ password_file: file })).toBe(
      `${file}: the file is UTF-16 text (what Windows Notepad saves as "Unicode"); save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)`,
    );
  });

  it('as UTF-16 is one line for an ACL too, beside the password file problems', async () => {
    const acl = join(dir, 'acl-utf16');
    writeFileSync(acl, Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('\0u\0s\0e\0r\0 \0a\0\n', 'latin1')]), { mode: 0o600 });
    const passwd = join(dir, 'passwd-nul');
    writeFileSync(passwd, `alice:${await hashPassword('a', FAST)}\n\0\0\0\n`, { mode: 0o600 });
    expect((await loadProblem({ password_file: passwd, acl_file: acl })).split('\n')).toEqual([
      `${passwd}: the file holds NUL bytes, so it is not a text file (UTF-16 without a BOM, or a binary named by mistake); save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)`,
      `${acl}: the file is UTF-16 text (what Windows Notepad saves as "Unicode"); save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)`,
    ]);
  });

  it('as UTF-8 with a BOM, CRLF line ends and trailing blanks lets every user log in, the first one too (mosquitto_pub)', async () => {
    const file = join(dir, 'passwd-bom-crlf');
    writeFileSync(file, `\uFEFFalice:${await hashPassword('secret', FAST)}\t\r\n\r\n# bob below\r\nbob:${await hashPassword('pw', FAST)}  \r\n`, { mode: 0o600 });
    const gw = await startGateway('', ['auth:', `  password_file: ${file}`, '  failure_delay: 100ms'].join('\n'));
    try {
      const pub = (user: string, password: string) =>
        new Promise<number | null>((resolve) => {
          const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.port), '-u', user, '-P', password, '-t', 't', '-m', 'x'], { stdio: 'ignore' });
          const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
          child.once('close', (code) => {
            clearTimeout(t);
            resolve(code);
          });
        });
      expect(await pub('alice', 'secret')).toBe(0);
      expect(await pub('bob', 'pw')).toBe(0);
      expect(await pub('alice', 'pw')).not.toBe(0);
    } finally {
      await within(gw.stop(), 5000, 'the gateway to stop');
    }
  });
});

describe('outpost passwd on a file saved as UTF-16', () => {
  it('refuses it with one line saying so, and leaves it as it is', async () => {
    const file = join(dir, 'passwd-utf16-cmd');
    const bytes = Buffer.from(`\uFEFFalice:${await hashPassword('a', FAST)}\r\n`, 'utf16le');
    writeFileSync(file, bytes, { mode: 0o600 });
    const err: string[] = [];
    const code = await passwdCommand(file, 'bob', false, { stdout: () => {}, stderr: (t) => void err.push(t), readPassword: async () => 'pw', scrypt: FAST });
    expect(code).toBe(2);
    expect(err.join('')).toBe(`outpost passwd: ${file}: the file is UTF-16 text (what Windows Notepad saves as "Unicode"); save it as UTF-8, then run this again\n`);
    expect(readFileSync(file)).toEqual(bytes);
  });
});

describe('a file far larger than any password file', () => {
  it('is refused with one line naming its size, without reading it whole', async () => {
    const file = join(dir, 'passwd-huge');
    writeFileSync(file, 'alice:', { mode: 0o600 });
    truncateSync(file, 65 * 2 ** 20); // sparse: no 65 MiB written
    expect(await loadProblem({ password_file: file })).toBe(
      `${file}: the file is 65 MiB, over the 64 MiB limit (10000 users take about 1.2 MiB); check that auth.password_file names the right file`,
    );
  });
});

describe('a path that names no regular file', () => {
  it('as a FIFO is one problem line at once, not a start-up or reload that hangs in open()', async () => {
    const fifo = join(dir, 'passwd-fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await within(loadProblem({ password_file: fifo }), 3000, 'the FIFO to be refused')).toBe(
      `${fifo}: the file is a FIFO, not a regular file; check that auth.password_file names the right file`,
    );
  });

  it('as a character device is one problem line, not read until memory runs out', async () => {
    expect(await within(loadProblem({ acl_file: '/dev/zero' }), 3000, '/dev/zero to be refused')).toBe(
      '/dev/zero: the file is a character device, not a regular file; check that auth.acl_file names the right file',
    );
  });
});

describe('a very long line', () => {
  it('as a user name longer than an MQTT CONNECT can carry is a bad line that quotes the name short', async () => {
    const name = 'x'.repeat(70_000);
    const { users, problems } = readPasswordFile(`${name}:${await hashPassword('a', FAST)}\nbob:${await hashPassword('b', FAST)}\n`, 'passwd');
    expect([...users.keys()]).toEqual(['bob']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^passwd:1: user name "x{64}…" is 70000 bytes long, more than the 65535 an MQTT CONNECT can carry; fix or delete the line/);
    expect(problems[0]!.length).toBeLessThan(400);
  });

  it('of junk has its name quoted short too', () => {
    const { problems } = readPasswordFile(`${'y '.repeat(50_000)}:$scrypt$\n`, 'passwd');
    expect(problems[0]).toMatch(/^passwd:1: user name "(y ){32}…" must not contain spaces/);
    expect(problems[0]!.length).toBeLessThan(400);
  });

  it('is refused by outpost passwd as a user name', async () => {
    const err: string[] = [];
    const code = await passwdCommand(join(dir, 'passwd-new'), 'z'.repeat(65_536), false, {
      stdout: () => {},
      stderr: (t) => void err.push(t),
      readPassword: async () => 'pw',
      scrypt: FAST,
    });
    expect(code).toBe(2);
    expect(err.join('')).toBe(`outpost passwd: user name "${'z'.repeat(64)}…" is longer than the 65535 bytes an MQTT CONNECT can carry\n`);
  });

  it('as a comment is ignored, as Mosquitto does', async () => {
    const { users, problems } = readPasswordFile(`alice:${await hashPassword('a', FAST)}\n#${'c'.repeat(200_000)}\n`, 'passwd');
    expect([...users.keys()]).toEqual(['alice']);
    expect(problems).toEqual([]);
  });
});

describe('outpost passwd on a path that names no regular file', () => {
  it('refuses a FIFO at once instead of hanging in open()', async () => {
    const fifo = join(dir, 'passwd-cmd-fifo');
    execFileSync('mkfifo', [fifo]);
    const err: string[] = [];
    const code = passwdCommand(fifo, 'bob', false, { stdout: () => {}, stderr: (t) => void err.push(t), readPassword: async () => 'pw', scrypt: FAST });
    expect(await within(code, 3000, 'outpost passwd to refuse the FIFO')).toBe(2);
    expect(err.join('')).toBe(`outpost passwd: ${fifo} is not a regular file; name the password file\n`);
  });
});
