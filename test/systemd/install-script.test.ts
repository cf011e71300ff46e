/**
 * systemd/install.sh against a temporary root (--root, --no-systemctl, --no-npm): the files,
 * owners and modes it lays down, the outpost user in dialout, a second run that changes
 * nothing, user config never overwritten, an update that removes stale files, and
 * --uninstall keeping config and data unless --purge. It needs root (useradd, chown).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const script = join(repo, 'systemd/install.sh');
const tmp = mkdtempSync(join(tmpdir(), 'outpost-install-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function sh(args: string[]) {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A minimal system tree: passwd, group (with dialout), shadow files. */
function makeRoot(): string {
  const root = mkdtempSync(join(tmp, 'root-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\ndialout:*::\n', { mode: 0o640 });
  return root;
}

/** A built package to install: the real config/ and systemd/, a stand-in dist/. */
function makePackage(): string {
  const from = mkdtempSync(join(tmp, 'pkg-'));
  for (const f of ['package.json', 'package-lock.json', 'README.md']) cpSync(join(repo, f), join(from, f));
  cpSync(join(repo, 'config'), join(from, 'config'), { recursive: true });
  cpSync(join(repo, 'systemd'), join(from, 'systemd'), { recursive: true });
  mkdirSync(join(from, 'dist/src/observability'), { recursive: true });
  writeFileSync(join(from, 'dist/src/main.js'), '#!/usr/bin/env node\nconsole.log("outpost");\n', { mode: 0o755 });
  writeFileSync(join(from, 'dist/src/observability/status-page.html'), '<!doctype html>\n');
  return from;
}

/** Every path below root with type, mode, owner, and content hash or link target. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);
      out.push(`${p.slice(root.length)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p);
    }
  };
  walk(root);
  return out;
}

const passwdLine = (root: string) => readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('outpost:'));

describe('systemd/install.sh', () => {
  it('is valid bash', () => {
    const r = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('installs into a root: package, command link, user in dialout, config from the examples, state directory and unit; a second run changes nothing', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs install.sh, which needs root (useradd, chown); run the suite as root as .ci/run does');
    const root = makeRoot();
    const from = makePackage();
    const args = ['--root', root, '--from', from, '--no-systemctl', '--no-npm'];
    const first = sh(args);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain('install.sh: created system user outpost (groups outpost, dialout)');

    const user = passwdLine(root)!.split(':');
    expect(user[5]).toBe('/var/lib/outpost');
    expect(user[6]).toBe('/usr/sbin/nologin');
    const [uid, gid] = [Number(user[2]), Number(user[3])];
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(/^dialout:x:20:outpost$/m);

    expect(readFileSync(join(root, 'opt/outpost/package.json'), 'utf8')).toBe(readFileSync(join(repo, 'package.json'), 'utf8'));
    expect(readlinkSync(join(root, 'usr/local/bin/outpost'))).toBe('/opt/outpost/dist/src/main.js');
    expect(lstatSync(join(root, 'opt/outpost/dist/src/main.js')).mode & 0o777).toBe(0o755);
    const etc = lstatSync(join(root, 'etc/outpost'));
    expect([etc.mode & 0o777, etc.uid, etc.gid]).toEqual([0o750, 0, gid]);
    for (const [file, example] of [['outpost.yaml', 'outpost.example.yaml'], ['devices.yaml', 'devices.example.yaml']] as const) {
      const st = lstatSync(join(root, 'etc/outpost', file));
      expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, 0, gid]);
      expect(readFileSync(join(root, 'etc/outpost', file), 'utf8')).toBe(readFileSync(join(repo, 'config', example), 'utf8'));
    }
    const state = lstatSync(join(root, 'var/lib/outpost'));
    expect([state.mode & 0o777, state.uid, state.gid]).toEqual([0o750, uid, gid]);
    expect(readFileSync(join(root, 'etc/systemd/system/outpost.service'), 'utf8')).toBe(readFileSync(join(repo, 'systemd/outpost.service'), 'utf8'));

    const before = snapshot(root);
    const second = sh(args);
    expect(second.code).toBe(0);
    expect(second.out).toBe('install.sh: already installed; nothing changed\n');
    expect(snapshot(root)).toEqual(before);
  });

  it('keeps an edited config, replaces changed program files and removes ones the new version dropped', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs install.sh, which needs root (useradd, chown)');
    const root = makeRoot();
    const from = makePackage();
    const args = ['--root', root, '--from', from, '--no-systemctl', '--no-npm'];
    writeFileSync(join(from, 'dist/src/old-module.js'), 'export {};\n');
    expect(sh(args).code).toBe(0);
    writeFileSync(join(root, 'etc/outpost/outpost.yaml'), 'listeners: [{ type: mqtt, host: 0.0.0.0, port: 1883 }]\n');
    rmSync(join(from, 'dist/src/old-module.js'));
    writeFileSync(join(from, 'dist/src/main.js'), '#!/usr/bin/env node\nconsole.log("outpost 2");\n', { mode: 0o755 });
    const update = sh(args);
    expect(update.code).toBe(0);
    expect(update.out).toBe('install.sh: /opt/outpost: 1 files written, 1 removed (not in this version)\ninstall.sh: done. Edit /etc/outpost/outpost.yaml, then: systemctl restart outpost; journalctl -u outpost -o cat -f\n');
    expect(existsSync(join(root, 'opt/outpost/dist/src/old-module.js'))).toBe(false);
    expect(readFileSync(join(root, 'etc/outpost/outpost.yaml'), 'utf8')).toBe('listeners: [{ type: mqtt, host: 0.0.0.0, port: 1883 }]\n');
  });

  it('uninstalls the program and unit but keeps config, data and the user; --purge removes those too', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs install.sh, which needs root (useradd, chown)');
    const root = makeRoot();
    const from = makePackage();
    expect(sh(['--root', root, '--from', from, '--no-systemctl', '--no-npm']).code).toBe(0);
    writeFileSync(join(root, 'var/lib/outpost/outpost.db'), 'data');

    const un = sh(['--root', root, '--uninstall', '--no-systemctl']);
    expect(un.code).toBe(0);
    expect(un.out).toContain('kept /etc/outpost (config) and /var/lib/outpost (data, the outbox)');
    for (const gone of ['opt/outpost', 'usr/local/bin/outpost', 'etc/systemd/system/outpost.service']) expect(existsSync(join(root, gone))).toBe(false);
    expect(existsSync(join(root, 'etc/outpost/outpost.yaml'))).toBe(true);
    expect(readFileSync(join(root, 'var/lib/outpost/outpost.db'), 'utf8')).toBe('data');
    expect(passwdLine(root)).toBeDefined();

    const purge = sh(['--root', root, '--uninstall', '--purge', '--no-systemctl']);
    expect(purge.code).toBe(0);
    expect(existsSync(join(root, 'etc/outpost'))).toBe(false);
    expect(existsSync(join(root, 'var/lib/outpost'))).toBe(false);
    expect(passwdLine(root)).toBeUndefined();
    expect(sh(['--root', root, '--uninstall', '--no-systemctl']).out).toContain('not installed; nothing changed');
  });

  it('refuses an unbuilt package with one sentence saying what to run', () => {
    const root = makeRoot();
    const from = makePackage();
    rmSync(join(from, 'dist'), { recursive: true });
    const r = sh(['--root', root, '--from', from, '--no-systemctl', '--no-npm']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`install.sh: ${from} is not built (no dist/src/main.js); run "npm ci" in ${from} first (it builds), or pass --from\n`);
  });
});
