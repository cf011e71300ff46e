/**
 * `outpost passwd` run with sudo on the password file the service reads: the rewritten file
 * keeps the owner, group and mode the operator gave it, so the gateway (user outpost) can
 * still read it at the next reload or start. Runs as root, as .ci/run runs the suite.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { passwdCommand } from '../../src/auth/passwd-command.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-passwd-own-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const NOBODY = 65_534;

function passwd(file: string, user: string, del = false): Promise<number> {
  return passwdCommand(file, user, del, {
    stdout: () => undefined,
    stderr: () => undefined,
    readPassword: async () => 'secret',
    scrypt: { N: 1024, r: 8, p: 1 },
  });
}

const ownership = (file: string) => {
  const st = statSync(file);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o777 };
};

describe('outpost passwd as root', () => {
  if (process.getuid?.() !== 0) throw new Error('these tests change file owners, which needs root (as .ci/run runs the suite)');

  it('keeps the owner, group and mode of an existing password file when adding, changing and deleting users', async () => {
    const file = join(tmp, 'passwd');
    writeFileSync(file, '');
    chownSync(file, 0, NOBODY);
    chmodSync(file, 0o640); // root:outpost 0640, readable by the service
    expect(await passwd(file, 'alice')).toBe(0);
    expect(ownership(file)).toEqual({ uid: 0, gid: NOBODY, mode: 0o640 });
    expect(await passwd(file, 'alice')).toBe(0);
    expect(await passwd(file, 'bob')).toBe(0);
    expect(await passwd(file, 'bob', true)).toBe(0);
    expect(ownership(file)).toEqual({ uid: 0, gid: NOBODY, mode: 0o640 });
  });

  it('keeps a file owned by the service user its own', async () => {
    const file = join(tmp, 'owned');
    writeFileSync(file, '');
    chownSync(file, NOBODY, NOBODY);
    chmodSync(file, 0o600);
    expect(await passwd(file, 'alice')).toBe(0);
    expect(ownership(file)).toEqual({ uid: NOBODY, gid: NOBODY, mode: 0o600 });
  });

  it('takes access for others away from an existing file', async () => {
    const file = join(tmp, 'open');
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    expect(await passwd(file, 'alice')).toBe(0);
    expect(ownership(file).mode).toBe(0o640);
  });

  it('creates a new file with mode 0640 in the group of its directory (/etc/outpost is root:outpost)', async () => {
    const dir = join(tmp, 'etc-outpost');
    mkdirSync(dir);
    chownSync(dir, 0, NOBODY);
    const file = join(dir, 'passwd');
    expect(await passwd(file, 'alice')).toBe(0);
    expect(ownership(file)).toEqual({ uid: 0, gid: NOBODY, mode: 0o640 });
  });
});
