/**
 * `outpost check` says what start-up warns about the auth files (a password file every user
 * of the host may read, one without users) on stderr, and still passes: "ok", exit 0. It
 * said only "ok", so an installer checking the config learnt of it nowhere.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { runCliCaptured } from '../helpers/cli-run.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-warns-'));
chmodSync(tmp, 0o755); // mkdtemp gives 0700, which no one else could pass: the files would be out of reach whatever their mode
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost check', () => {
  it('warns about a password file every user may read, and passes', async () => {
    const passwd = join(tmp, 'passwd');
    writeFileSync(passwd, formatPasswordFile([['alice', await hashPassword('pw', { N: 1024, r: 8, p: 1 })]]));
    chmodSync(passwd, 0o644);
    const file = join(tmp, 'outpost.yaml');
    writeFileSync(file, 'auth:\n  password_file: passwd\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(0);
    expect(result.out).toBe(`${file}: ok\n`);
    expect(result.err).toMatch(new RegExp(`^warning: auth\\.password_file ${passwd} \\(mode 0644, owner \\d+:\\d+\\): every user of this host may read it, .*; chmod 0640 ${passwd} .*\\n$`));
  });

  it('says nothing more about files only root and outpost may read', async () => {
    const passwd = join(tmp, 'passwd-ok');
    writeFileSync(passwd, formatPasswordFile([['alice', await hashPassword('pw', { N: 1024, r: 8, p: 1 })]]));
    chmodSync(passwd, 0o600);
    const file = join(tmp, 'ok.yaml');
    writeFileSync(file, 'auth:\n  password_file: passwd-ok\n');
    expect(await runCliCaptured(['check', file])).toEqual({ code: 0, out: `${file}: ok\n`, err: '' });
  });
});
