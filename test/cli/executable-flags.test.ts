/**
 * The memory settings of the gateway live in one place, the shebang of the executable
 * (src/main.ts → dist/src/main.js, which systemd's ExecStart runs through /usr/local/bin/outpost),
 * so that `npm start`, the benchmarks and the soak measure what ships.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const shebang = readFileSync(`${repo}src/main.ts`, 'utf8').split('\n')[0]!;

describe('the outpost executable', () => {
  it('starts node through env -S with the memory flags and the malloc arena limit', () => {
    expect(shebang).toMatch(/^#!\/usr\/bin\/env -S /);
    expect(shebang).toContain(' MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 node ');
    expect(shebang).toContain('--max-semi-space-size=2');
    expect(shebang).toContain('--heap-growing-percent=30');
    expect(shebang).toContain('--single-threaded-gc');
    // Linux reads at most 255 bytes of a #! line (127 before 5.1, 2019; the supported
    // Debian 12 runs 6.1): a longer one would be cut and node would refuse the rest.
    expect(Buffer.byteLength(shebang)).toBeLessThan(256);
  });

  it('has a shebang this node accepts: the flags reach V8 and the variable reaches the process', () => {
    const out = execFileSync('/usr/bin/env', ['-S', `${shebang.slice('#!/usr/bin/env -S '.length)} -e "console.log(JSON.stringify([process.execArgv.slice(0, 3), process.env.MALLOC_ARENA_MAX, process.env.MALLOC_TRIM_THRESHOLD_]))"`], { encoding: 'utf8', timeout: 10_000 });
    expect(JSON.parse(out)).toEqual([['--max-semi-space-size=2', '--heap-growing-percent=30', '--single-threaded-gc'], '2', '131072']);
  });

  it('is what npm start runs, with no node flags of its own, in place of the shell (so a SIGTERM to npm reaches it)', () => {
    const pkg = JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.scripts['start']).toBe('exec dist/src/main.js run');
    expect(pkg.bin['outpost']).toBe('dist/src/main.js');
  });
});

describe('the built executable (npm run build, scripts/build.ts)', () => {
  const dist = `${repo}dist/src/`;
  const files = readdirSync(dist).filter((f) => f.endsWith('.js'));

  it('is one bundle: it loads only node built-ins, its own chunks, the native modules, pino-pretty and optional helpers', () => {
    const loaded = new Set<string>();
    for (const f of files) {
      const js = readFileSync(dist + f, 'utf8');
      for (const m of js.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\b__require\(\s*|\brequire\(\s*)"([\w@./:-]+)"/g)) loaded.add(m[1]!);
    }
    const outside = [...loaded].filter((s) => !s.startsWith('./') && !s.startsWith('node:') && !builtinModules.includes(s));
    // ws's and debug's optional helpers are required inside try/catch: used when installed, never needed
    expect(outside.sort()).toEqual(['better-sqlite3', 'bufferutil', 'serialport', 'supports-color', 'utf-8-validate']);
    expect(files).toContain('main.js');
    // pino-pretty is required by name only on a terminal (src/observability/logger.ts)
    expect(files.some((f) => readFileSync(dist + f, 'utf8').includes('("pino-pretty")'))).toBe(true);
  });

  it('carries zod with its English messages only, and maps back to the TypeScript sources', () => {
    // main.js and the chunks it loads (the CLI is one, imported once SIGHUP is handled: src/main.ts)
    const sources = files.flatMap((f) => (JSON.parse(readFileSync(`${dist}${f}.map`, 'utf8')) as { sources: string[] }).sources);
    const locales = sources.filter((s) => /zod\/v4\/locales\/(?!index\.js$)[^/]+$/.test(s));
    expect(locales).toEqual([expect.stringMatching(/zod\/v4\/locales\/en\.js$/)]);
    expect(sources.some((s) => s.endsWith('src/broker/broker.ts'))).toBe(true);
    expect(sources.some((s) => s.endsWith('drivers/modbus-rtu/index.ts'))).toBe(true);
  });

  it('handles SIGHUP before it loads the rest of the gateway, so a reload asked for during start-up does not end it (node exits on SIGHUP by default)', async () => {
    const main = readFileSync(`${dist}main.js`, 'utf8');
    const early = main.indexOf('process.on("SIGHUP"');
    expect(early).toBeGreaterThan(0);
    expect(early).toBeLessThan(main.search(/import\("\.\/cli-[\w-]+\.js"\)/));
    // And the process: SIGHUP as soon as it is caught, long before the listeners are up.
    const dir = mkdtempSync(join(tmpdir(), 'outpost-hup-'));
    writeFileSync(`${dir}/outpost.yaml`, `listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]\nstore: { dir: ${dir}/data }\n`);
    const child = spawn(`${dist}main.js`, ['run', '--config', `${dir}/outpost.yaml`], { stdio: 'ignore' });
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`${code} ${signal}`)));
    try {
      const caught = () => (BigInt(`0x${/^SigCgt:\s+([0-9a-f]+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? '0'}`) & 1n) === 1n;
      for (let i = 0; i < 400 && !caught(); i++) await new Promise((r) => setTimeout(r, 5));
      process.kill(child.pid!, 'SIGHUP');
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('running'), 1500))])).toBe('running');
      process.kill(child.pid!, 'SIGTERM');
      expect(await exited).toBe('0 null');
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts, names its version and exits 0', () => {
    expect(execFileSync(`${dist}main.js`, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
