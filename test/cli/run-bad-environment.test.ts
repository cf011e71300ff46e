/**
 * Bad environments for `outpost run`, as a real process: a config directory that does not
 * exist, and a state directory the service user may not write (the process runs as the
 * unprivileged user nobody, as outpost would without its own state directory). Each is one
 * sentence that says what to do, and exit code 2 (config, or a state directory that stays
 * unwritable until someone acts) or 1 (runtime).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'outpost-bad-env-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function outpost(args: string[], as?: number) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 30_000,
    ...(as === undefined ? {} : { uid: as, gid: as }),
    env: { ...process.env, HOME: tmp },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('outpost run in a bad environment', () => {
  it('says the config directory is missing and how to create it, exit 2', () => {
    const file = join(tmp, 'no-such-dir', 'outpost.yaml');
    const r = outpost(['run', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${file}: the config directory ${join(tmp, 'no-such-dir')} does not exist; create it with the example config (systemd/install.sh does) or give --config another file\n`);
  });

  it('says the store was written by a newer outpost and what to do, exit 2 (systemd does not restart it every 5 s)', () => {
    const state = join(tmp, 'newer');
    mkdirSync(state);
    copyFileSync(fileURLToPath(new URL('../fixtures/store/future.db', import.meta.url)), join(state, 'outpost.db'));
    const config = join(tmp, 'newer.yaml');
    writeFileSync(config, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nlog: { format: json }\nstore: { dir: ${JSON.stringify(state)} }\n`);
    const r = outpost(['run', '--config', config]);
    expect(r.code).toBe(2);
    const fatal = r.out.split('\n').filter((l) => l.includes('"level":"fatal"')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(fatal).toEqual([expect.stringMatching(/^startup failed: .*outpost\.db has schema version 999 .*newer outpost; run that version again, or move the file away/)]);
  });

  it('says the state directory cannot be written by nobody and to chown it or change store.dir, exit 2 (systemd does not restart it every 5 s)', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs outpost as the user nobody, which needs root (as .ci/run runs the suite)');
    const state = join(tmp, 'state');
    mkdirSync(state);
    chmodSync(tmp, 0o755);
    chmodSync(state, 0o755); // owned by root: nobody may not write here
    const config = join(tmp, 'outpost.yaml');
    writeFileSync(
      config,
      `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nlog: { format: json }\n` +
        `store: { dir: ${JSON.stringify(state)} }\nbridges: [{ name: cloud, url: "mqtt://127.0.0.1:1", rules: [{ pattern: "a/#" }] }]\n`,
    );
    chmodSync(config, 0o644);
    const r = outpost(['run', '--config', config], 65_534);
    expect(r.code).toBe(2);
    const fatal = r.out.split('\n').filter((l) => l.includes('"level":"fatal"')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(fatal).toEqual([
      `startup failed: cannot lock the state directory ${state} (EACCES); user nobody (uid 65534) may not write there: give the directory to that user (chown -R nobody ${state}) or set store.dir to one it can write`,
    ]);
    expect(r.out).not.toMatch(/"stack"/);
  });

  it('says a state directory on a filesystem that cannot hold one (/proc) cannot be created, exit 1, instead of hanging', () => {
    const config = join(tmp, 'proc-state.yaml');
    writeFileSync(config, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nmetrics: { enabled: false }\nlog: { format: json }\nstore: { dir: /proc/outpost-state/data }\n`);
    const r = outpost(['run', '--config', config]);
    expect(r.code).toBe(1);
    const fatal = r.out.split('\n').filter((l) => l.includes('"level":"fatal"')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(fatal).toEqual([
      "startup failed: state directory /proc/outpost-state/data cannot be created (ENOENT: no such file or directory, mkdir '/proc/outpost-state'); fix store.dir or its permissions",
    ]);
  });
});
