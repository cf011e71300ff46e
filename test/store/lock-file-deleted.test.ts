/**
 * One gateway per state directory even when its lock file goes away: a cleanup that deletes
 * or replaces <store.dir>/outpost.lock while a gateway runs must not let a second gateway
 * start on the same outbox. Real processes: the running gateway, and a second `outpost run`
 * on the same config.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { instanceName } from '../../src/store/instance-name.js';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';

const started: OutpostProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  while (started.length > 0) await started.pop()!.stop();
  while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
});

async function site(): Promise<{ dir: string; data: string; config: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-lock-deleted-'));
  dirs.push(dir);
  const { file } = await writeProcessConfig(dir, { bridges: [{ name: 'cloud', url: 'mqtt://127.0.0.1:9', rules: [{ pattern: 'a/#' }] }] });
  return { dir, data: join(dir, 'data'), config: file };
}

async function startGateway(config: string): Promise<OutpostProcess> {
  const p = await OutpostProcess.start(config);
  started.push(p);
  return p;
}

/** Runs a second `outpost run` to its end; its exit code and the message of its fatal line. */
async function secondStart(config: string): Promise<{ code: number | null; fatal: string[] }> {
  const second = OutpostProcess.spawn(config);
  started.push(second);
  const timer = setTimeout(() => second.kill9(), 20_000);
  await second.exited;
  clearTimeout(timer);
  const fatal = second.output().split('\n').filter((l) => l.includes('"level":"fatal"')).map((l) => (JSON.parse(l) as { msg: string }).msg);
  return { code: second.child.exitCode, fatal };
}

describe('the single-instance guard of a state directory', () => {
  it('refuses a second gateway after outpost.lock was deleted while the first ran, naming the first one and its pid', async () => {
    const { data, config } = await site();
    const first = await startGateway(config);
    unlinkSync(join(data, 'outpost.lock'));
    const second = await secondStart(config);
    expect(second.code).toBe(1);
    expect(second.fatal).toEqual([
      `startup failed: another outpost (pid ${first.pid}) is already running with store.dir ${data} (its lock file ${join(data, 'outpost.lock')} was deleted or replaced while it ran); stop it, or give this one its own store.dir`,
    ]);
    expect(first.running).toBe(true);
  });

  it('refuses a second gateway after outpost.lock was replaced by another file while the first ran', async () => {
    const { dir, data, config } = await site();
    const first = await startGateway(config);
    writeFileSync(join(dir, 'empty'), '');
    renameSync(join(dir, 'empty'), join(data, 'outpost.lock'));
    const second = await secondStart(config);
    expect(second.code).toBe(1);
    expect(second.fatal).toEqual([expect.stringContaining(`another outpost (pid ${first.pid}) is already running with store.dir ${data}`)]);
  });

  it('names the running gateway by its pid when its lock file is there and locked', async () => {
    const { data, config } = await site();
    const first = await startGateway(config);
    const second = await secondStart(config);
    expect(second.code).toBe(1);
    expect(second.fatal).toEqual([
      `startup failed: another outpost (pid ${first.pid}) is already running with store.dir ${data} (${join(data, 'outpost.lock')} is locked); stop it, or give this one its own store.dir`,
    ]);
  });

  it('lets a gateway start once the first was killed with SIGKILL, its lock file deleted before (no stale lock)', async () => {
    const { data, config } = await site();
    const first = await startGateway(config);
    unlinkSync(join(data, 'outpost.lock'));
    await first.crash();
    const after = await startGateway(config);
    expect(after.running).toBe(true);
  });

  it('refuses a gateway while another program holds the directory name bound with its exact length (as other node versions bind it)', async () => {
    const { data, config } = await site();
    // The name needs the directory: a first gateway made it.
    const first = await startGateway(config);
    await first.stop();
    unlinkSync(join(data, 'outpost.lock'));
    const name = instanceName(data);
    const holder = spawn('python3', ['-c', `import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(${JSON.stringify(`\0${name}`)})\ns.listen(1)\nprint("bound",flush=True)\ntime.sleep(60)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once('data', () => resolve());
        holder.once('exit', (c) => reject(new Error(`python3 exited (${c}) before binding the name`)));
      });
      const second = await secondStart(config);
      expect(second.code).toBe(1);
      expect(second.fatal).toEqual([expect.stringContaining(`another outpost (pid ${holder.pid}) is already running with store.dir ${data}`)]);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
