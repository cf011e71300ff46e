/** systemd/install.sh run without root repeats the command to type, with its options. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = join(fileURLToPath(new URL('../../', import.meta.url)), 'systemd/install.sh');

describe('install.sh without root', () => {
  it('says to run it with sudo, options included, and exits 1', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs install.sh as the user nobody, which needs root (as .ci/run runs the suite)');
    const r = spawnSync('bash', [script, '--root', '/nonexistent', '--no-npm'], { encoding: 'utf8', timeout: 30_000, uid: 65_534, gid: 65_534 });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `install.sh: run as root (sudo ${script} --root /nonexistent --no-npm): it creates a system user and writes to /opt, /etc and /var/lib\n`,
    );
  });
});
