#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 node --max-semi-space-size=2 --heap-growing-percent=30 --single-threaded-gc
/**
 * The `outpost` executable: binds the CLI (src/cli.ts) to the real process —
 * argv, stdout/stderr, signals, crash handlers and the exit code.
 *
 * The shebang is where the memory settings live, so that systemd (ExecStart runs this file),
 * `npm start`, the benchmarks and the soak (test/helpers/outpost-process.ts) all run the same
 * ones (issue 9: RSS ≤ 60 MiB above bare node under the whole-gateway soak, flat):
 * - `--max-semi-space-size=2`: V8's young generation at 2 MiB per semi-space instead of up
 *   to 16, which it grows to under a burst and never gives back.
 * - `--heap-growing-percent=30`: the old generation is collected when it reaches 1.3× what
 *   survived the last full GC. Left to itself V8 lets it grow up to 4× first (the ceiling
 *   scales with the heap limit it derives from the machine's RAM), and the soak's RSS went up
 *   and down by 40-70 MiB of garbage under throughput.
 * - `--single-threaded-gc`: V8 collects on the main thread only. By default four helper
 *   threads share each collection with it; at the soak's 1,000 msg/s they used 1.9 % of a core
 *   (a sixth of the gateway's CPU) while the main thread's own GC time, by --trace-gc, is only
 *   about 0.13 % of a core higher without them; on a 2- or 4-core Pi they also compete with the
 *   gateway and the OS for the same cores. Alone, the main thread marks in small steps (longest
 *   0.9 ms, against 6.7 ms with the helpers) and scavenges in as long as before
 *   (bench/README.md, "Single-threaded GC").
 * - `MALLOC_ARENA_MAX=2`: glibc makes up to 8 malloc arenas per core for V8's and libuv's
 *   threads, each keeping freed memory resident; two are plenty for one JS thread.
 * - `MALLOC_TRIM_THRESHOLD_=131072`: glibc's default (128 KiB), but set, which stops glibc from
 *   raising it (up to 64 MiB) after large blocks are freed, so freed heap tops go back to the
 *   system instead of staying resident. (musl ignores both variables.)
 * Measured (bench/README.md, "Memory settings"): the soak's RSS peak went from 162 to about
 * 94 MiB; the cost is throughput at saturation (fan-in QoS 1 about 0.8×); at the soak's
 * 1,000 msg/s the CPU used did not measurably change.
 *
 * And one V8 flag set here at run time rather than in the shebang:
 * - `--optimize-for-size`: V8 then lets the old generation grow past what survived the last
 *   full GC by 2 MiB before the next one instead of 8, so `--heap-growing-percent=30` is what
 *   bounds it. On the command line the flag would also shrink the semi-spaces to 1 MiB (V8's
 *   flag implications are applied at start only), which costs throughput; set after start it
 *   keeps the 2 MiB ones. Measured (bench/README.md, "Memory settings"): the RSS peak of a
 *   restart that drains a 60 s outage (62,000 messages) while 1,000 msg/s keep coming fell
 *   from 97.6-98.9 to 92.5 MiB set here (95.0-95.1 set 3 s after start); CPU at 1,000 msg/s
 *   rose by about one point of a core, saturated fan-out throughput fell to 0.71x.
 */
import { setFlagsFromString } from 'node:v8';
import type { ProcessHooks } from './cli.js';

// Node's default for SIGHUP is to exit, and systemd counts that as a clean stop (no restart).
// Until the CLI installs its reload handler, a SIGHUP (`systemctl reload`, a logrotate
// script) is ignored: the config is being read anyway. So this comes before the rest of the
// gateway is loaded, which takes a few hundred milliseconds on a Pi.
const earlyReload = (): void => undefined;
process.on('SIGHUP', earlyReload);
const { runCli } = await import('./cli.js');

setFlagsFromString('--optimize-for-size');

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
    process.off('SIGHUP', earlyReload);
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
