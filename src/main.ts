#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * The `outpost` executable: binds the CLI (src/cli.ts) to the real process —
 * argv, stdout/stderr, signals, crash handlers and the exit code.
 *
 * The shebang caps V8's young generation at 4 MiB per semi-space: the default (16 MiB)
 * grows RSS by tens of MiB under a burst of connections and never gives it back, which
 * on a 1 GB Pi matters more than the few percent of throughput it buys (bench/README.md).
 */
import { runCli, type ProcessHooks } from './cli.js';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

const hooks: ProcessHooks = {
  onSignal(fn) {
    const handler = (signal: NodeJS.Signals) => fn(signal);
    for (const s of SIGNALS) process.on(s, handler);
    return () => {
      for (const s of SIGNALS) process.off(s, handler);
    };
  },
  onReload(fn) {
    // Installing a handler also replaces node's default for SIGHUP, which is to exit.
    const handler = () => fn();
    process.on('SIGHUP', handler);
    return () => void process.off('SIGHUP', handler);
  },
  onCrash(fn) {
    const onException = (err: Error) => fn(err, 'uncaughtException');
    const onRejection = (reason: unknown) => fn(reason, 'unhandledRejection');
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
    return () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    };
  },
  exitNow: (code) => process.exit(code),
};

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  process: hooks,
  env: process.env,
});
process.exitCode = code;
// Everything is stopped and flushed by now; a handle leaked by a bug must not keep
// a stopped gateway alive (systemd would wait for its stop timeout and SIGKILL it).
setTimeout(() => process.exit(code), 2000).unref();
