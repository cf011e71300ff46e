/**
 * `outpost run --config FILE` in-process through the real CLI, with the process hooks in the
 * test's hands: `reload()` is a SIGHUP, `signal('SIGTERM')` a stop, and every JSON log line is
 * kept for `waitLog`. `metricsUrl` and `listenerPorts` come from the start-up log lines.
 */
import { runCli, type ProcessHooks } from '../../src/cli.js';

export type LogRecord = Record<string, unknown>;

export interface InProcessRun {
  lines: LogRecord[];
  /** The n-th (from 1) log line whose msg equals `match` or satisfies it; 5 s at most. */
  waitLog(match: string | ((msg: string) => boolean), n?: number): Promise<LogRecord>;
  /** SIGHUP. */
  reload(): void;
  signal(s: string): void;
  /** Whether the CLI still listens for SIGHUP (it lets go at stop). */
  readonly reloadHooked: boolean;
  /** The exit code. */
  done: Promise<number>;
  metricsUrl: string;
  listenerPorts: number[];
}

export async function runInProcess(file: string): Promise<InProcessRun> {
  const lines: LogRecord[] = [];
  let onSignal: ((s: string) => void) | undefined;
  let onReload: (() => void) | undefined;
  const proc: ProcessHooks = {
    onSignal: (fn) => ((onSignal = fn), () => (onSignal = undefined)),
    onReload: (fn) => ((onReload = fn), () => (onReload = undefined)),
    onCrash: () => () => undefined,
    exitNow: () => undefined,
  };
  const done = runCli(['run', '--config', file], { stdout: () => undefined, stderr: () => undefined, process: proc, logDestination: { write: (l: string) => void lines.push(JSON.parse(l) as LogRecord) } });
  const waitLog = async (match: string | ((msg: string) => boolean), n = 1): Promise<LogRecord> => {
    const ok = typeof match === 'string' ? (m: string) => m === match : match;
    for (let i = 0; i < 250; i++) {
      const found = lines.filter((x) => typeof x['msg'] === 'string' && ok(x['msg']));
      if (found.length >= n) return found[n - 1]!;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no such log line (${String(match)}): ${JSON.stringify(lines)}`);
  };
  const { address } = (await waitLog('metrics listening')) as { address: { port: number } };
  const started = (await waitLog('gateway started')) as { listeners: { port: number }[] };
  return {
    lines,
    waitLog,
    reload: () => onReload!(),
    signal: (s) => onSignal!(s),
    get reloadHooked() {
      return onReload !== undefined;
    },
    done,
    metricsUrl: `http://127.0.0.1:${address.port}`,
    listenerPorts: started.listeners.map((l) => l.port),
  };
}
