// Processes of the bridge benchmark: outpost with a bridge, and a local ("edge") Mosquitto
// with its own bridge, both towards the cloud Mosquitto over mutual TLS. Stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { RawClient } from './mqtt-client.js';
import { killAllSync, trackChild } from './brokers.js';

/**
 * The words that start node the way the built executable does: the environment and flags of
 * dist/src/main.js's shebang line, plus the V8 flags main.js sets at run time. A process started
 * with them (a bare node, the floor of the paced benchmark) pays what the gateway's memory
 * settings cost, so figures compare like with like.
 */
export function executableNodeWords(repoRoot: string): string[] {
  const shebang = readFileSync(path.join(repoRoot, 'dist/src/main.js'), 'utf8').split('\n', 1)[0]!;
  const words = shebang.replace(/^#!\/usr\/bin\/env\s+(-S\s+)?/, '').split(/\s+/).filter(Boolean);
  const node = words.indexOf('node');
  return ['/usr/bin/env', ...words.slice(0, node + 1), '--optimize-for-size', ...words.slice(node + 1)];
}

/** SIGKILL every child still running (exit handlers); one registry with the broker bench. */
export const killChildrenSync = killAllSync;

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export class Child {
  private tail = '';
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    trackChild(child);
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
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

  /** Waits until an MQTT CONNECT succeeds. */
  async ready(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive) throw new Error(`${this.name} exited at start: ${this.output.slice(-600)}`);
      try {
        const c = await RawClient.connect({ port: this.port, clientId: `bridge-bench-ready-${process.pid}`, protocol: 4, timeoutMs: 1000 });
        await c.close();
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${this.name} not ready after ${timeoutMs / 1000} s: ${(e as Error).message}; ${this.output.slice(-600)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** SIGTERM by pid, SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    process.kill(this.pid, 'SIGTERM');
    const t = setTimeout(() => this.alive && process.kill(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** Bytes this process caused to be written to storage so far (/proc/<pid>/io write_bytes). */
  writeBytes(): number {
    const m = /^write_bytes:\s+(\d+)$/m.exec(readFileSync(`/proc/${this.pid}/io`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  }

  /** utime+stime in clock ticks (USER_HZ, 100) from /proc/<pid>/stat. */
  cpuTicks(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  }
}

/** CPU use of a child between two points, in percent of one core. */
export class CpuMeter {
  private ticks: number;
  private at: number;
  constructor(private readonly child: Child) {
    this.ticks = child.cpuTicks();
    this.at = performance.now();
  }
  percent(): number {
    const ticks = this.child.cpuTicks();
    // USER_HZ is 100: ticks / seconds is percent of one core.
    return (ticks - this.ticks) / ((performance.now() - this.at) / 1000);
  }
}

export interface OutpostSpec {
  repoRoot: string;
  dir: string;
  port: number;
  synchronous: 'full' | 'normal';
  cloudTlsPort: number;
  tls: TlsFiles;
  /** Command template; {config} is replaced (default: the built executable). */
  cmd: string;
}

/** outpost with one bridge (mTLS, MQTT 5, default inflight 100) for `sensors/#` → `sites/17/sensors/#`. */
export function startOutpost(s: OutpostSpec): Child {
  mkdirSync(s.dir, { recursive: true });
  const config = path.join(s.dir, 'outpost.yaml');
  writeFileSync(
    config,
    JSON.stringify(
      {
        listeners: [{ type: 'mqtt', host: '127.0.0.1', port: s.port }],
        log: { level: 'warn', format: 'json' },
        store: { dir: path.join(s.dir, 'state'), synchronous: s.synchronous },
        bridges: [
          {
            name: 'cloud',
            url: `mqtts://127.0.0.1:${s.cloudTlsPort}`,
            client_id: 'site-17',
            ca: s.tls.ca,
            cert: s.tls.cert,
            key: s.tls.key,
            protocol: 5,
            // The cloud is down at first: retry often, so the drain starts soon after it is up.
            backoff: { base: '100ms', cap: '500ms' },
            rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, remote_prefix: 'sites/17/' }],
          },
        ],
      },
      null,
      2,
    ),
  );
  const [cmd, ...args] = s.cmd.split(/\s+/).map((w) => w.replaceAll('{config}', config));
  const child = spawn(cmd === 'node' ? process.execPath : cmd!, args, { cwd: s.repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Child('outpost', s.port, child);
}

export interface EdgeMosquittoSpec {
  dir: string;
  port: number;
  cloudTlsPort: number;
  tls: TlsFiles;
  /** max_queued_messages; undefined keeps Mosquitto's default (1000). */
  maxQueued?: number;
}

/** A local Mosquitto with a `connection` bridge to the cloud, as a user would configure it. */
export function startEdgeMosquitto(s: EdgeMosquittoSpec): Child {
  mkdirSync(s.dir, { recursive: true });
  const conf = path.join(s.dir, 'edge.conf');
  writeFileSync(
    conf,
    [
      `listener ${s.port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      `log_dest file ${path.join(s.dir, 'edge.log')}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      ...(s.maxQueued === undefined ? [] : [`max_queued_messages ${s.maxQueued}`]),
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'connection cloud',
      `address 127.0.0.1:${s.cloudTlsPort}`,
      'remote_clientid edge-mosquitto',
      `bridge_cafile ${s.tls.ca}`,
      `bridge_certfile ${s.tls.cert}`,
      `bridge_keyfile ${s.tls.key}`,
      'topic sensors/# out 1 "" sites/17/',
      // Mosquitto's default reconnect delay grows to 30 s; 1 s keeps the comparison fair.
      'restart_timeout 1',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Child('edge mosquitto', s.port, child);
}
