/**
 * The memory settings of the gateway live in one place, the shebang of the executable
 * (src/main.ts → dist/src/main.js, which systemd's ExecStart runs through /usr/local/bin/outpost),
 * so that `npm start`, the benchmarks and the soak measure what ships.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    // Linux reads at most 127 bytes of a #! line before 5.1 and 255 since.
    expect(Buffer.byteLength(shebang)).toBeLessThan(128);
  });

  it('has a shebang this node accepts: the flags reach V8 and the variable reaches the process', () => {
    const out = execFileSync('/usr/bin/env', ['-S', `${shebang.slice('#!/usr/bin/env -S '.length)} -e "console.log(JSON.stringify([process.execArgv.slice(0, 2), process.env.MALLOC_ARENA_MAX, process.env.MALLOC_TRIM_THRESHOLD_]))"`], { encoding: 'utf8', timeout: 10_000 });
    expect(JSON.parse(out)).toEqual([['--max-semi-space-size=2', '--heap-growing-percent=30'], '2', '131072']);
  });

  it('is what npm start runs, with no node flags of its own, in place of the shell (so a SIGTERM to npm reaches it)', () => {
    const pkg = JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.scripts['start']).toBe('exec dist/src/main.js run');
    expect(pkg.bin['outpost']).toBe('dist/src/main.js');
  });
});
