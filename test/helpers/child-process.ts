/**
 * Third-party processes the tests start (mosquitto, socat): spawned with stderr kept for
 * error messages, and SIGKILLed by pid if the test process exits while they still run.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) if (c.pid !== undefined) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
});

export interface TrackedChild {
  child: ChildProcess;
  exited: Promise<void>;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
}

/** Starts `cmd`; `onExit` runs once it exited (to forget it). */
export function spawnTracked(cmd: string, args: string[], onExit: () => void): TrackedChild {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    live.delete(child);
    onExit();
  });
  return { child, exited, stderr: () => err };
}
