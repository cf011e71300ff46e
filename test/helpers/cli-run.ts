/**
 * Runs the CLI in this process as `outpost <args>` would, with stdout and stderr captured,
 * no signal or crash hooks installed and the run's log lines dropped.
 */
import { runCli, type CliDeps } from '../../src/cli.js';

export async function runCliCaptured(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const deps: CliDeps = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    process: { onSignal: () => () => undefined, onCrash: () => () => undefined, exitNow: () => undefined },
    logDestination: { write: () => undefined },
  };
  const code = await runCli(args, deps);
  return { code, out, err };
}
