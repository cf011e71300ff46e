/**
 * A store.dir the service user may not write is an environment error that a restart cannot
 * fix: `outpost run` (a real process, as the user nobody) says in one sentence which
 * directory, which user and what to do, and exits 2, the status the systemd unit lists in
 * RestartPreventExitStatus= (exit 1 had systemd restart it every 5 s for ever).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const NOBODY = 65_534;
const tmp = mkdtempSync(join(tmpdir(), 'outpost-unwritable-'));
chmodSync(tmp, 0o755);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function needRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this test runs outpost as the user nobody on a directory owned by root, which needs root (as .ci/run runs the suite)');
}

/** `outpost run` as nobody on `state`; its exit code and the messages of its fatal lines. */
function runAsNobody(name: string, state: string): { code: number | null; fatal: string[]; out: string } {
  const config = join(tmp, `${name}.yaml`);
  writeFileSync(
    config,
    `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nlog: { format: json }\n` +
      `store: { dir: ${JSON.stringify(state)} }\nbridges: [{ name: cloud, url: "mqtt://127.0.0.1:9", rules: [{ pattern: "a/#" }] }]\n`,
  );
  chmodSync(config, 0o644);
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'run', '--config', config], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 20_000, // a gateway that starts after all is killed, and fails the test
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, HOME: tmp },
  });
  const fatal = r.stdout.split('\n').filter((l) => l.includes('"level":"fatal"')).map((l) => (JSON.parse(l) as { msg: string }).msg);
  return { code: r.status, fatal, out: r.stdout + r.stderr };
}

describe('a store.dir the service user may not write', () => {
  it('that exists with mode 0555, owned by another user: exit 2 and one sentence naming the directory, the user and the chown to run', () => {
    needRoot();
    const state = join(tmp, 'read-only-mode');
    mkdirSync(state);
    chmodSync(state, 0o555);
    const r = runAsNobody('mode', state);
    expect(r.fatal).toEqual([
      `startup failed: cannot lock the state directory ${state} (EACCES); user nobody (uid ${NOBODY}) may not write there: give the directory to that user (chown -R nobody ${state}) or set store.dir to one it can write`,
    ]);
    expect(r.code).toBe(2);
    expect(r.out).not.toMatch(/"stack"/);
  });

  it('that does not exist yet, under a directory that user may not write: exit 2, saying to make it for that user', () => {
    needRoot();
    const parent = join(tmp, 'closed-parent');
    mkdirSync(parent);
    chmodSync(parent, 0o755);
    const state = join(parent, 'data');
    const r = runAsNobody('missing', state);
    expect(r.fatal).toEqual([
      `startup failed: state directory ${state} cannot be created (EACCES: permission denied, mkdir '${state}'); user nobody (uid ${NOBODY}) may not write there: give the directory to that user (mkdir -p ${state} && chown nobody ${state}) or set store.dir to one it can write`,
    ]);
    expect(r.code).toBe(2);
  });

  it('that is the user\'s, holding files a `sudo outpost run` left owned by root: exit 2, saying to chown them', () => {
    needRoot();
    const state = join(tmp, 'root-files');
    mkdirSync(state);
    for (const f of ['outpost.lock', 'outpost.db']) {
      writeFileSync(join(state, f), '');
      chmodSync(join(state, f), 0o644);
    }
    chownSync(state, NOBODY, NOBODY);
    const r = runAsNobody('root-files', state);
    expect(r.fatal).toEqual([expect.stringMatching(/; user nobody \(uid 65534\) may not write there: give the directory to that user \(chown -R nobody .*\) or set store\.dir to one it can write$/)]);
    expect(r.fatal[0]).toContain(state);
    expect(r.code).toBe(2);
  });

  it('that is the user\'s, with only its lock file left owned by root: exit 2 naming outpost.lock, since SQLite would "lock" it read-only without holding anything', () => {
    needRoot();
    const state = join(tmp, 'root-lock');
    mkdirSync(state);
    writeFileSync(join(state, 'outpost.lock'), '');
    chmodSync(join(state, 'outpost.lock'), 0o644);
    chownSync(state, NOBODY, NOBODY);
    const r = runAsNobody('root-lock', state);
    expect(r.fatal).toEqual([
      `startup failed: cannot lock the state directory ${state} (outpost.lock: EACCES); user nobody (uid ${NOBODY}) may not write there: give the directory to that user (chown -R nobody ${state}) or set store.dir to one it can write`,
    ]);
    expect(r.code).toBe(2);
  });

  it('ends with the exit status the systemd unit does not restart', () => {
    const unit = readFileSync(join(repo, 'systemd', 'outpost.service'), 'utf8');
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
  });
});

describe('a store.dir that a later start may find usable', () => {
  it('that cannot be created on a filesystem that holds none (/proc) stays exit 1: a disk mounted late looks the same', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'run', '--config', writeConfig('/proc/outpost-state/data')], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
  });
});

function writeConfig(state: string): string {
  const config = join(tmp, 'late.yaml');
  writeFileSync(config, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nlog: { format: json }\nstore: { dir: ${JSON.stringify(state)} }\n`);
  return config;
}
