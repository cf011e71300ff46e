// Broker child processes: spawn, readiness check, /proc sampling, kill by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConnackRefused, RawClient, type ProtocolVersion } from './mqtt-client.js';

export type BrokerName = 'outpost' | 'aedes' | 'mosquitto';
export const ALL_BROKERS: BrokerName[] = ['outpost', 'aedes', 'mosquitto'];

export interface LaunchSpec {
  cmd: string;
  args: string[];
}

export interface BrokerConfig {
  repoRoot: string;
  tmpRoot: string;
  outpostCmd: string | null;
  mosquittoBin: string;
  protocol: ProtocolVersion;
  readyTimeoutMs: number;
  /** Ask the reference brokers to set TCP_NODELAY on client sockets (default: their own default, off). */
  noDelay: boolean;
  /** Run brokers under `taskset -c <cpu>` (--pin), or null. */
  pinCpu: number | null;
}

// The executable itself, so its shebang's node flags (the 4 MiB semi-space) apply as in production.
export const DEFAULT_OUTPOST_CMD = 'dist/src/main.js run --config {config}';

/** Children that are alive right now; used by the exit handlers. */
const live = new Set<ChildProcess>();

/** Registers a child so that killAllSync stops it; it leaves the set when it exits. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

export function killAllSync(): void {
  for (const c of live) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  live.clear();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function launchSpec(name: BrokerName, port: number, dir: string, cfg: BrokerConfig): LaunchSpec {
  mkdirSync(dir, { recursive: true });
  switch (name) {
    case 'mosquitto': {
      const conf = path.join(dir, 'mosquitto.conf');
      writeFileSync(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          'allow_anonymous true',
          'persistence false',
          // 0 = no limit (mosquitto.conf(5)); the default of 1000 would silently drop
          // QoS 1 messages queued for the fan-in subscriber.
          'max_queued_messages 0',
          'max_queued_bytes 0',
          'log_dest stderr',
          'log_type error',
          ...(cfg.noDelay ? ['set_tcp_nodelay true'] : []),
          '',
        ].join('\n'),
      );
      return { cmd: cfg.mosquittoBin, args: ['-c', conf] };
    }
    case 'aedes':
      return {
        cmd: process.execPath,
        args: ['--import', 'tsx', path.join(cfg.repoRoot, 'bench', 'aedes-server.ts'), String(port), ...(cfg.noDelay ? ['--nodelay'] : [])],
      };
    case 'outpost': {
      const conf = path.join(dir, 'outpost.yaml');
      const store = path.join(dir, 'store');
      mkdirSync(store, { recursive: true });
      writeFileSync(
        conf,
        [
          'listeners:',
          `  - { type: mqtt, host: 127.0.0.1, port: ${port} }`,
          'store:',
          `  dir: ${JSON.stringify(store)}`,
          'log:',
          '  level: warn',
          // Parity with the mosquitto config (max_queued_messages 0 = no limit): outpost's
          // defaults (1000 messages / 16 MiB) drop most of the QoS 1 fan-in run.
          'broker:',
          '  max_queued_messages: 10000000',
          '  max_queued_bytes: 4GiB',
          '',
        ].join('\n'),
      );
      const template = cfg.outpostCmd ?? DEFAULT_OUTPOST_CMD;
      const hasPlaceholder = /\{config\}|\{port\}/.test(template);
      const words = template
        .trim()
        .split(/\s+/)
        .map((w) => w.replaceAll('{config}', conf).replaceAll('{port}', String(port)));
      if (!hasPlaceholder) words.push('--config', conf);
      const [cmd, ...args] = words;
      return { cmd: cmd === 'node' ? process.execPath : cmd!, args };
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class BrokerProcess {
  private tail = '';
  private constructor(
    readonly name: BrokerName,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-2000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', () => live.delete(child));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.tail.trim();
  }

  /** Spawn and wait until it completes an MQTT handshake; throws "unavailable" reasons. */
  static async start(name: BrokerName, cfg: BrokerConfig, generation: number): Promise<BrokerProcess> {
    const port = await freePort();
    const dir = path.join(cfg.tmpRoot, `${name}-${generation}`);
    const spec = launchSpec(name, port, dir, cfg);
    if (cfg.pinCpu !== null) {
      spec.args = ['-c', String(cfg.pinCpu), spec.cmd, ...spec.args];
      spec.cmd = 'taskset';
    }
    const child = spawn(spec.cmd, spec.args, { cwd: cfg.repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const bp = new BrokerProcess(name, port, child);
    const deadline = Date.now() + cfg.readyTimeoutMs;
    let lastErr = 'no attempt';
    let failed: Error | null = null;
    void spawnError.then((e) => (failed = e));
    while (Date.now() < deadline) {
      if (failed) throw new Error(`failed to spawn ${spec.cmd}: ${(failed as Error).message}`);
      if (!bp.alive) {
        await sleep(50); // let stderr arrive
        const out = bp.output ? `; output: ${bp.output.slice(-300)}` : '';
        throw new Error(`exited (code ${child.exitCode ?? child.signalCode}) before accepting connections${out}`);
      }
      try {
        const c = await RawClient.connect({
          port,
          clientId: `bench-ready-${process.pid}-${generation}`,
          protocol: cfg.protocol,
          timeoutMs: Math.max(200, Math.min(2000, deadline - Date.now())),
        });
        await c.close();
        return bp;
      } catch (e) {
        if (e instanceof ConnackRefused) {
          await bp.stop();
          throw new Error(`refused MQTT ${cfg.protocol === 5 ? '5.0' : '3.1.1'} connection: ${e.message}`);
        }
        lastErr = (e as Error).message;
      }
      await sleep(100);
    }
    await bp.stop();
    throw new Error(`did not accept connections within ${cfg.readyTimeoutMs / 1000} s (${lastErr})`);
  }

  /** SIGTERM by pid, SIGKILL after a grace period. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive || this.child.pid === undefined) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      process.kill(this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      if (this.alive && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(t);
    live.delete(this.child);
  }

  /** VmRSS in KiB from /proc/<pid>/status. */
  rssKiB(): number {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    if (!m) throw new Error(`no VmRSS for pid ${this.pid}`);
    return Number(m[1]);
  }

  /** utime+stime in clock ticks (USER_HZ, 100 on Linux) from /proc/<pid>/stat. */
  cpuTicks(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime = field 14, stime = field 15
    return Number(fields[11]) + Number(fields[12]);
  }
}
