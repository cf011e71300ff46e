/**
 * `outpost check` with a password file that is not there yet and an ACL with a bad line:
 * the missing file was reported alone (loadAccessControl threw at the first unreadable file),
 * so the ACL's problems came out only after the password file was created.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAccessControl } from '../../src/auth/access-control.js';
import { runCliCaptured } from '../helpers/cli-run.js';

/** The built executable (npm ci builds it), run as another user. */
const MAIN = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

const tmp = mkdtempSync(join(tmpdir(), 'outpost-check-missing-passwd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost check with a missing password file', () => {
  it('reports the missing password file and every bad line of the ACL in one run, exit 2', async () => {
    writeFileSync(join(tmp, 'acl'), 'user alice\nbogus line\nread sensors/#\nwrite a/#/b\n');
    const file = join(tmp, 'outpost.yaml');
    writeFileSync(file, 'auth:\n  password_file: passwd\n  acl_file: acl\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    const lines = result.err.split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^auth\.password_file .*passwd cannot be read \(ENOENT\)/);
    expect(lines[1]).toContain(`${join(tmp, 'acl')}:2: unknown keyword "bogus"`);
    expect(lines[2]).toContain(`${join(tmp, 'acl')}:4: topic filter "a/#/b" is not valid`);
  });

  it('reports a missing ACL beside the bad lines of the password file', async () => {
    writeFileSync(join(tmp, 'passwd2'), 'alice:nothash\n');
    const file = join(tmp, 'other.yaml');
    writeFileSync(file, 'auth:\n  password_file: passwd2\n  acl_file: no-such-acl\n');
    const result = await runCliCaptured(['check', file]);
    expect(result.code).toBe(2);
    const lines = result.err.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`${join(tmp, 'passwd2')}:1: expected user:$scrypt$`);
    expect(lines[1]).toMatch(/^auth\.acl_file .*no-such-acl cannot be read \(ENOENT\)/);
  });

  it('keeps CONFIG_UNREADABLE as the code when a file is missing, so start-up says the same', async () => {
    await expect(loadAccessControl({ password_file: 'nope', acl_file: 'acl', allow_anonymous: false, failure_delay: 1000, max_concurrent_checks: 4 }, join(tmp, 'x.yaml'))).rejects.toMatchObject({
      code: 'CONFIG_UNREADABLE',
      message: expect.stringContaining('acl:2: unknown keyword'),
    });
  });

  it('says a password file it may not read cannot be read, with the ACL problems (outpost check run as the user nobody)', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs outpost check as the user nobody, which needs root (as .ci/run runs the suite)');
    const dir = mkdtempSync(join(tmpdir(), 'outpost-check-locked-'));
    try {
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, 'locked'), '');
      chmodSync(join(dir, 'locked'), 0o000);
      writeFileSync(join(dir, 'acl'), 'user alice\nbogus line\n', { mode: 0o644 });
      writeFileSync(join(dir, 'outpost.yaml'), 'auth:\n  password_file: locked\n  acl_file: acl\n', { mode: 0o644 });
      const r = spawnSync(process.execPath, [MAIN, 'check', join(dir, 'outpost.yaml')], { encoding: 'utf8', timeout: 30_000, uid: 65_534, gid: 65_534 });
      expect(r.status).toBe(2);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines[0]).toMatch(/locked cannot be read \(EACCES\); let the user outpost runs as read it \(installed: chgrp outpost \S+locked; chmod 0640 \S+locked\)/);
      expect(lines[1]).toContain(`${join(dir, 'acl')}:2: unknown keyword "bogus"`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a password file named as a directory is one, not that it should be created', async () => {
    await expect(loadAccessControl({ password_file: '.', acl_file: 'acl', allow_anonymous: false, failure_delay: 1000, max_concurrent_checks: 4 }, join(tmp, 'x.yaml'))).rejects.toThrow(
      /cannot be read \(EISDIR\); it is a directory: name the file in it\n[^]*acl:2: unknown keyword/,
    );
  });
});
