/**
 * Real serial ports for tests: socat makes a pseudo-terminal (the "device" outpost opens, at a
 * stable symlink like /dev/serial/by-id/...) and bridges its other side to a TCP port on
 * 127.0.0.1, where the test plays the device with an ordinary socket (asynchronous writes, so
 * a test process can flood the port without blocking the gateway living in it).
 *
 *   outpost ── open(link) ── pty ══ socat (pid) ══ 127.0.0.1:port ── test socket (the device)
 *
 * Unplugging is killing socat by pid: the pty vanishes under the open port, exactly like a
 * pulled USB adapter. plug() starts it again at the same link and port.
 * `ignoreeof` keeps socat alive when outpost closes and reopens the pty.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTracked } from './child-process.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './gateway-fixture.js';


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SocatPty {
  /** The path outpost opens. */
  readonly path: string;
  private port = 0;
  private child: ChildProcess | undefined;
  private socket: Socket | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Bytes outpost wrote to the port (commands), across plugs. */
  received = Buffer.alloc(0);
  private onData: ((b: Buffer) => void) | undefined;

  constructor(dir: string, name: string) {
    this.path = join(dir, name);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts socat and connects the device side. */
  async plug(): Promise<void> {
    if (this.child) throw new Error(`${this.path} is already plugged`);
    if (this.port === 0) this.port = await freePort();
    const started = spawnTracked('socat', [`PTY,link=${this.path},raw,echo=0,ignoreeof`, `TCP-LISTEN:${this.port},bind=127.0.0.1,reuseaddr`], () => {
      if (this.child === child) this.child = undefined;
    });
    const child = started.child;
    this.child = child;
    this.exited = started.exited;
    const deadline = Date.now() + 5000;
    for (;;) {
      if (this.child !== child) throw new Error(`socat exited: ${started.stderr()}`);
      if (existsSync(this.path)) {
        const s = await tryConnect(this.port);
        if (s) {
          this.socket = s;
          s.on('data', (b: Buffer) => {
            this.received = Buffer.concat([this.received, b]);
            this.onData?.(b);
          });
          s.on('error', () => undefined);
          return;
        }
      }
      if (Date.now() > deadline) throw new Error(`socat pty ${this.path} not ready after 5 s: ${started.stderr()}`);
      await sleep(10);
    }
  }

  /** The device sends bytes; resolves when the socket took them (backpressure respected). */
  write(data: string | Buffer): Promise<void> {
    const s = this.socket;
    if (!s) return Promise.reject(new Error(`${this.path} is unplugged`));
    return new Promise((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Called with every chunk outpost writes (a Modbus slave answers from here). */
  onReceive(fn: ((b: Buffer) => void) | undefined): void {
    this.onData = fn;
  }

  /** Resolves once outpost has written something that contains `text`. */
  async waitReceived(text: string, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.received.toString('latin1').includes(text)) {
      if (Date.now() > deadline) throw new Error(`the device did not receive ${JSON.stringify(text)}; got ${JSON.stringify(this.received.toString('latin1'))}`);
      await sleep(10);
    }
  }

  /** Pulls the adapter: SIGKILL socat by pid and wait until it is gone. */
  async unplug(): Promise<void> {
    const c = this.child;
    this.socket?.destroy();
    this.socket = undefined;
    if (c?.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited;
  }
}

function tryConnect(port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(undefined));
  });
}

/** A directory for pty links, and every pty made in it killed by pid at cleanup. */
export class PtyLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'outpost-pty-'));
  private readonly ptys: SocatPty[] = [];

  async pty(name: string): Promise<SocatPty> {
    const p = new SocatPty(this.dir, name);
    this.ptys.push(p);
    await p.plug();
    return p;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.ptys.splice(0).map((p) => p.unplug()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
