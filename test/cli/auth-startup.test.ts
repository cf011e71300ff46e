import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliDeps } from '../../src/cli.js';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { FAST_SCRYPT } from '../helpers/auth-harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'outpost-auth-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function harness() {
  const out: string[] = [];
  const err: string[] = [];
  const logLines: string[] = [];
  const deps: CliDeps = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    process: { onSignal: () => () => undefined, onCrash: () => () => undefined, exitNow: () => undefined },
    logDestination: { write: (line: string) => void logLines.push(line) },
  };
  const logs = () => logLines.map((l) => JSON.parse(l) as { level: string | number; msg: string });
  return { deps, out: () => out.join(''), err: () => err.join(''), logs };
}

/** A config in its own directory naming `passwd` and `acl` relative to it. */
function setup(name: string, passwd: string, acl: string): string {
  const dir = mkdtempSync(join(tmp, `${name}-`));
  writeFileSync(join(dir, 'passwd'), passwd);
  writeFileSync(join(dir, 'acl'), acl);
  const file = join(dir, 'outpost.yaml');
  writeFileSync(file, 'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nlog: { format: json }\nmetrics: { enabled: false }\nauth: { password_file: passwd, acl_file: acl }\n');
  return file;
}

describe('a malformed password file or ACL', () => {
  it('stops start-up with exit code 2 and one line naming file:line and what is wrong', async () => {
    const file = setup('bad-passwd', '# users\nalice:hunter2\n', 'read #\n');
    const h = harness();
    expect(await runCli(['run', '--config', file], h.deps)).toBe(2);
    const fatal = h.logs().filter((l) => l.level === 60 || l.level === 'fatal');
    expect(fatal.map((l) => l.msg)).toEqual([
      `startup failed: ${join(file, '..', 'passwd')}:2: expected user:$scrypt$N$r$p$salt$hash (written by \`outpost passwd\`); fix or delete the line, then set the user's password with \`outpost passwd ${join(file, '..', 'passwd')} USER\` (it refuses a file with bad lines)`,
    ]);
  });

  it('is reported by outpost check, relative to the config file', async () => {
    const file = setup('bad-acl', formatPasswordFile([['alice', await hashPassword('pw', FAST_SCRYPT)]]), 'user alice\nreadwrite home/#\nwrite\n');
    const h = harness();
    expect(await runCli(['check', file], h.deps)).toBe(2);
    expect(h.err()).toBe(`${join(file, '..', 'acl')}:3: "write" needs a topic filter, e.g. "write sensors/#"; see config/acl.example for the format\n`);
  });

  it('is reported by outpost check with every problem of both files, each with file:line and what to do, exit 2', async () => {
    const file = setup('bad-both', '# users\nalice:hunter2\nbob:\n', 'user alice\nreadwrite home/#\nwrite\nuser\n');
    const h = harness();
    expect(await runCli(['check', file], h.deps)).toBe(2);
    const passwd = join(file, '..', 'passwd');
    const acl = join(file, '..', 'acl');
    const rewrite = `; fix or delete the line, then set the user's password with \`outpost passwd ${passwd} USER\` (it refuses a file with bad lines)`;
    expect(h.err()).toBe([
      `${passwd}:2: expected user:$scrypt$N$r$p$salt$hash (written by \`outpost passwd\`)${rewrite}`,
      `${passwd}:3: expected user:$scrypt$N$r$p$salt$hash (written by \`outpost passwd\`)${rewrite}`,
      `${acl}:3: "write" needs a topic filter, e.g. "write sensors/#"; see config/acl.example for the format`,
      `${acl}:4: "user" needs one name without spaces, e.g. "user sensor-1"; see config/acl.example for the format`,
      '',
    ].join('\n'));
    expect(h.out()).toBe('');
  });

  it('passes outpost check when both files are good', async () => {
    const file = setup('good', formatPasswordFile([['alice', await hashPassword('pw', FAST_SCRYPT)]]), 'user alice\nreadwrite home/#\n');
    const h = harness();
    expect(await runCli(['check', file], h.deps)).toBe(0);
    expect(h.out()).toBe(`${file}: ok\n`);
  });
});
