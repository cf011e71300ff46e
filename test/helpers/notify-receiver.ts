/**
 * A real AF_UNIX datagram listener standing in for systemd's NOTIFY_SOCKET.
 *
 * - `socat` (`socat -u UNIX-RECV:path -`): prints every datagram, unseparated. It keeps the
 *   fd that systemd-notify's BARRIER=1 passes, so senders must use `--no-block`.
 * - `python3`: one JSON line per datagram; like PID 1 it drops (closes) passed fds, so the
 *   barrier completes and the default blocking systemd-notify returns at once.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

export interface NotifyReceiver {
  path: string;
  /** Everything received so far (socat: concatenated; python3: datagrams joined by "\n"). */
  text(): string;
  /** Received datagrams (python3 only; socat cannot separate them). */
  datagrams(): string[];
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  kill(): void;
}

const PY = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

export async function startNotifyReceiver(kind: 'socat' | 'python3', path: string): Promise<NotifyReceiver> {
  const child: ChildProcess = kind === 'socat'
    ? spawn('socat', ['-u', `UNIX-RECV:${path}`, '-'], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn('python3', ['-c', PY, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const deadline = Date.now() + 5000;
  while (!existsSync(path) || (kind === 'python3' && !out.startsWith('bound'))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${kind} did not bind ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const datagrams = () => out.split('\n').slice(1).filter((l) => l).map((l) => JSON.parse(l) as string);
  const text = () => (kind === 'socat' ? out : datagrams().join('\n'));
  return {
    path,
    text,
    datagrams,
    async waitFor(pattern, ms = 5000) {
      const end = Date.now() + ms;
      while (!pattern.test(text())) {
        if (Date.now() > end) throw new Error(`no ${pattern} from the notify socket; got ${JSON.stringify(text())}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    kill() {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    },
  };
}
