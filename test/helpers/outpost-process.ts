/**
 * The real outpost executable as a child process (`node --import tsx src/main.ts run --config FILE`,
 * or the built dist/src/main.js),
 * for crash, reload and whole-gateway tests: start and wait for "gateway started", kill -9,
 * SIGTERM, SIGHUP, and /proc figures (RSS, CPU ticks). Output is kept (the last 1 MiB) for
 * assertions and failure messages. A child still running when the test process exits is
 * SIGKILLed by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) if (c.pid !== undefined) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
});

const OUTPUT_CAP = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class OutpostProcess {
  readonly exited: Promise<void>;
  private out = '';

  private constructor(readonly child: ChildProcess) {
    const keep = (c: string): void => {
      this.out += c;
      if (this.out.length > OUTPUT_CAP) this.out = this.out.slice(-OUTPUT_CAP / 2);
    };
    child.stdout!.setEncoding('utf8').on('data', keep);
    child.stderr!.setEncoding('utf8').on('data', keep);
    live.add(child);
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => live.delete(child));
  }

  /** Spawns `outpost run --config config` without waiting for it (e.g. one expected to fail at start). */
  static spawn(config: string, o: { env?: NodeJS.ProcessEnv; built?: boolean } = {}): OutpostProcess {
    // built: the compiled executable itself, so the node flags and environment of its shebang
    // (src/main.ts) apply exactly as under systemd and `npm start` (for memory figures; the
    // tsx loader also adds tens of MiB of its own).
    const [command, args] = o.built ? ['dist/src/main.js', []] : [process.execPath, ['--import', 'tsx', 'src/main.ts']];
    const child = spawn(command, [...args, 'run', '--config', config], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: o.env ?? process.env,
    });
    return new OutpostProcess(child);
  }

  /** Starts the gateway with `config` and waits for its "gateway started" line. */
  static async start(config: string, o: { readyMs?: number; env?: NodeJS.ProcessEnv; built?: boolean } = {}): Promise<OutpostProcess> {
    const p = OutpostProcess.spawn(config, o);
    const child = p.child;
    const readyMs = o.readyMs ?? 15_000;
    const deadline = Date.now() + readyMs;
    while (!p.out.includes('"msg":"gateway started"')) {
      if (!p.running) throw new Error(`outpost exited at start (code ${child.exitCode}): ${p.out.slice(-3000)}`);
      if (Date.now() > deadline) {
        p.kill9();
        throw new Error(`outpost did not start within ${readyMs} ms: ${p.out.slice(-3000)}`);
      }
      await sleep(20);
    }
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything written to stdout and stderr (the last 1 MiB of it). */
  output(): string {
    return this.out;
  }

  /** JSON log lines with this `msg`. */
  logLines(msg: string): Record<string, unknown>[] {
    const needle = `"msg":${JSON.stringify(msg)}`;
    return this.out
      .split('\n')
      .filter((l) => l.includes(needle))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  kill9(): void {
    if (this.running) process.kill(this.pid, 'SIGKILL');
  }

  async crash(): Promise<void> {
    this.kill9();
    await this.exited;
  }

  hup(): void {
    process.kill(this.pid, 'SIGHUP');
  }

  /** SIGTERM, then SIGKILL if it has not exited within `ms`; resolves with the exit code. */
  async stop(ms = 10_000): Promise<number | null> {
    if (this.running) {
      process.kill(this.pid, 'SIGTERM');
      const t = setTimeout(() => this.kill9(), ms);
      await this.exited;
      clearTimeout(t);
    }
    return this.child.exitCode;
  }

  rssKiB(): number {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  }

  /** utime + stime in clock ticks (USER_HZ, 100 on Linux). */
  cpuTicks(): number {
    return cpuTicksOf(this.pid);
  }
}

/** utime + stime of process `pid` (all its threads) in clock ticks (USER_HZ, 100 on Linux). */
export function cpuTicksOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/**
 * Writes a config file for a real process into `dir`: an MQTT listener on a free 127.0.0.1
 * port, JSON logs at info, state in `dir/data`, metrics off; then `extra` on top (a `store`
 * in `extra` adds to the default one).
 */
export async function writeProcessConfig(dir: string, extra: Record<string, unknown> = {}, name = 'outpost.yaml'): Promise<{ file: string; port: number; url: string }> {
  const port = await freePort();
  const file = join(dir, name);
  const { store, ...rest } = extra;
  writeFileSync(
    file,
    JSON.stringify({
      listeners: [{ type: 'mqtt', host: '127.0.0.1', port }],
      log: { format: 'json', level: 'info' },
      // Off: an extra port could take one a test means to reuse (a stopped cloud's).
      metrics: { enabled: false },
      ...rest,
      store: { dir: join(dir, 'data'), ...(store as Record<string, unknown> | undefined) },
    }),
  );
  return { file, port, url: `mqtt://127.0.0.1:${port}` };
}
