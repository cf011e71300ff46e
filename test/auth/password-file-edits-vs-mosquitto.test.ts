/**
 * The same hand edits made to a password file, side by side: Mosquitto 2.0 on a file from
 * `mosquitto_passwd`, outpost on one from `outpost passwd` (neither reads the other's
 * hashes), each on 127.0.0.1, asked by mosquitto_pub as alice and as bob. Where they differ
 * outpost does so on purpose, and the test says which way:
 *   - a UTF-8 BOM (a Windows editor): Mosquitto takes it into the first user name, so alice
 *     is locked out without a word; outpost reads the name meant;
 *   - a user line without a hash: Mosquitto drops the line silently; outpost refuses the
 *     file with file:line (outpost check, start-up, reload), as for every bad line.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAccessControl } from '../../src/auth/access-control.js';
import { formatPasswordFile, hashPassword } from '../../src/auth/password-file.js';
import { authSchema } from '../../src/config/auth-schema.js';
import { spawnTracked } from '../helpers/child-process.js';
import { freePort, startGateway, within } from '../helpers/gateway-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-passwd-vs-mosquitto-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const USERS: [string, string][] = [
  ['alice', 'secret'],
  ['bob', 'pw2'],
];

/** Whether mosquitto_pub gets in as each of USERS. */
function admits(port: number): Promise<boolean[]> {
  return Promise.all(
    USERS.map(
      ([u, p]) =>
        new Promise<boolean>((resolve) => {
          const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', u, '-P', p, '-t', 't', '-m', 'x'], { stdio: 'ignore' });
          const t = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
          child.once('close', (code) => {
            clearTimeout(t);
            resolve(code === 0);
          });
        }),
    ),
  );
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

async function mosquittoAdmits(text: string, name: string): Promise<boolean[]> {
  const file = join(dir, `mosquitto-${name}`);
  writeFileSync(file, text, { mode: 0o600 });
  const port = await freePort();
  const conf = join(dir, `mosquitto-${name}.conf`);
  // As root, mosquitto would switch to the mosquitto user, which cannot read the 0700 tmp dir.
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${file}`, ...(process.getuid?.() === 0 ? ['user root'] : [])].join('\n') + '\n');
  const m = spawnTracked('mosquitto', ['-c', conf], () => {});
  try {
    const deadline = Date.now() + 5000;
    while (!(await listening(port))) {
      if (m.child.exitCode !== null || Date.now() > deadline) throw new Error(`mosquitto did not start: ${m.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return await admits(port);
  } finally {
    if (m.child.pid !== undefined && m.child.exitCode === null) process.kill(m.child.pid, 'SIGTERM');
    await m.exited;
  }
}

async function outpostAdmits(text: string, name: string): Promise<boolean[]> {
  const file = join(dir, `outpost-${name}`);
  writeFileSync(file, text, { mode: 0o600 });
  const gw = await startGateway('', ['auth:', `  password_file: ${file}`, '  failure_delay: 50ms'].join('\n'));
  try {
    return await admits(gw.port);
  } finally {
    await within(gw.stop(), 5000, 'the gateway to stop');
  }
}

/** The two users' lines as each tool writes them. */
async function lines(): Promise<{ mosquitto: string[]; outpost: string[] }> {
  const m = join(dir, 'mosquitto-base');
  writeFileSync(m, '');
  for (const [u, p] of USERS) execFileSync('mosquitto_passwd', ['-b', m, u, p], { stdio: 'ignore' });
  const o = formatPasswordFile(await Promise.all(USERS.map(async ([u, p]) => [u, await hashPassword(p, { N: 1024, r: 8, p: 1 })] as [string, string])));
  return { mosquitto: readFileSync(m, 'utf8').trim().split('\n'), outpost: o.trim().split('\n') };
}

const EDITS: [string, (l: string[]) => string, boolean[], boolean[]][] = [
  ['no edit', (l) => `${l.join('\n')}\n`, [true, true], [true, true]],
  ['CRLF line ends', (l) => `${l.join('\r\n')}\r\n`, [true, true], [true, true]],
  ['blanks around the lines', (l) => l.map((x) => `  ${x} \t`).join('\n'), [true, true], [true, true]],
  ['comments and blank lines', (l) => `# site users\n\n${l[0]}\n\n# bob\n${l[1]}\n`, [true, true], [true, true]],
  ['a UTF-8 BOM', (l) => `\uFEFF${l.join('\r\n')}\r\n`, [false, true], [true, true]],
];

describe('a password file edited by hand, in Mosquitto 2.0 and in outpost', () => {
  it.each(EDITS)('with %s admits alice and bob as expected in each', async (name, edit, inMosquitto, inOutpost) => {
    const l = await lines();
    const slug = name.replace(/\W+/g, '-');
    expect({ mosquitto: await mosquittoAdmits(edit(l.mosquitto), slug), outpost: await outpostAdmits(edit(l.outpost), slug) }).toEqual({ mosquitto: inMosquitto, outpost: inOutpost });
  });

  it('with a user line without a hash: Mosquitto drops it silently, outpost names it', async () => {
    const l = await lines();
    expect(await mosquittoAdmits(`${l.mosquitto[0]}\ncarol\n${l.mosquitto[1]}\n`, 'no-hash')).toEqual([true, true]);
    const file = join(dir, 'outpost-no-hash');
    writeFileSync(file, `${l.outpost[0]}\ncarol\n${l.outpost[1]}\n`, { mode: 0o600 });
    await expect(loadAccessControl(authSchema.parse({ password_file: file }), join(dir, 'o.yaml'))).rejects.toThrow(`${file}:2: expected user:$scrypt$N$r$p$salt$hash; fix or delete the line`);
  });
});
