/**
 * The warnings about the auth files (a password file others may read, one without users)
 * are said at every reload, by the auth reload step, not only once: an operator who fixed
 * nothing hears it again, one who fixed the file hears nothing more.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { parseConfigText } from '../../src/config/load.js';
import { authStep } from '../../src/reload/auth-step.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-auth-warn-reload-'));
chmodSync(dir, 0o755); // mkdtemp gives 0700, which no one else could pass: the files would be out of reach whatever their mode
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the auth reload step', () => {
  it('warns at each reload about a password file every user of the host may read, until it is fixed', async () => {
    const configFile = join(dir, 'outpost.yaml');
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, formatPasswordFile([['alice', await hashPassword('pw', { N: 1024, r: 8, p: 1 })]]));
    chmodSync(passwd, 0o644);
    const config = parseConfigText('auth: { password_file: passwd }', configFile);
    const warned: string[] = [];
    const step = authStep({ setAccessControl: () => {}, configFile, warn: (m) => warned.push(m) });
    const reload = async () => {
      await step.check!(config, config);
      await step.apply(config, config);
    };
    await reload();
    await reload();
    expect(warned).toHaveLength(2);
    expect(warned[1]).toMatch(new RegExp(`^auth\\.password_file ${passwd} \\(mode 0644, owner \\d+:\\d+\\): every user of this host may read it, .*; chmod 0640 ${passwd} `));
    chmodSync(passwd, 0o600);
    await reload();
    expect(warned).toHaveLength(2);
  });

  it('warns at each reload about a password file without users, which refuses every user name', async () => {
    const configFile = join(dir, 'outpost.yaml');
    const passwd = join(dir, 'empty-passwd');
    writeFileSync(passwd, '# every user was deleted with outpost passwd -D\n', { mode: 0o600 });
    chmodSync(passwd, 0o600);
    const config = parseConfigText('auth: { password_file: empty-passwd }', configFile);
    const warned: string[] = [];
    const step = authStep({ setAccessControl: () => {}, configFile, warn: (m) => warned.push(m) });
    await step.check!(config, config);
    await step.apply(config, config);
    expect(warned).toEqual([`auth.password_file ${passwd} has no users, so every client that gives a user name is refused; add one with \`outpost passwd ${passwd} USER\``]);
  });
});
