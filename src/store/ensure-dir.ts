/**
 * Creates a directory and its missing parents, one level at a time.
 *
 * Not `mkdirSync(dir, { recursive: true })`: on a pseudo filesystem such as /proc that call
 * never returns (mkdir of a missing parent fails with ENOENT, and Node's recursive walk keeps
 * retrying), and since it is synchronous the process then ignores SIGTERM too. Here each
 * missing level is made once, and the first failure is thrown as it is.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export function ensureDir(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !existsSync(d); ) {
    missing.push(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (err) {
      // Made meanwhile by someone else: fine.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
