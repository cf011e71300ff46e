/** `outpost passwd` that cannot write the file says so in one line with exit 1, not a stack trace. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { passwdCommand } from '../../src/auth/passwd-command.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-passwd-write-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost passwd that cannot write the file', () => {
  it('in a directory that does not exist says which file and what to check, exit 1', async () => {
    const file = join(tmp, 'no-such-dir', 'passwd');
    let err = '';
    const code = await passwdCommand(file, 'alice', false, {
      stdout: () => undefined,
      stderr: (t) => void (err += t),
      readPassword: async () => 'secret',
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    expect(code).toBe(1);
    expect(err).toBe(`outpost passwd: cannot write ${file} (ENOENT); check that its directory exists and may be written (sudo)\n`);
    expect(existsSync(join(tmp, 'no-such-dir'))).toBe(false);
  });
});
