/**
 * The files a config names that start-up reads: the TLS certificates, keys and CAs of
 * listeners and bridges. A config loaded for use (`outpost check`, `outpost run`, a reload)
 * has them read once here, so a wrong path is reported with every other problem, at its
 * line, with exit code 2, instead of stopping start-up later with the first one alone.
 * Relative paths are taken from the config file's directory (resolveTlsPaths), like
 * auth.password_file, auth.acl_file and serial.include: under systemd the working directory
 * is the state directory, not /etc/outpost.
 *
 * parseConfigText stays pure: this is the probe loadConfig hands it (a config parsed only
 * for its shape, like the example files in the tests, names files of another machine).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PathKey } from './issues.js';
import type { Config } from './schema.js';

export interface PathProblem {
  path: PathKey[];
  message: string;
}

export type ReadFile = (file: string) => void;

const readFromDisk: ReadFile = (file) => void readFileSync(file);

/** One problem per file that cannot be read, under the key that names it. */
export function unreadableFiles(config: Config, read: ReadFile = readFromDisk): PathProblem[] {
  const problems: PathProblem[] = [];
  const check = (path: PathKey[], file: string | undefined): void => {
    if (file === undefined) return;
    try {
      read(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      problems.push({ path, message: `cannot read ${file} (${code}); fix the path or its permissions` });
    }
  };
  config.listeners.forEach((l, i) => {
    if (l.type !== 'mqtts' && l.type !== 'wss') return;
    check(['listeners', i, 'cert'], l.cert);
    check(['listeners', i, 'key'], l.key);
    check(['listeners', i, 'ca'], l.ca);
  });
  config.bridges.forEach((b, i) => {
    check(['bridges', i, 'ca'], b.ca);
    check(['bridges', i, 'cert'], b.cert);
    check(['bridges', i, 'key'], b.key);
  });
  return problems;
}

/** Makes the TLS file paths of listeners and bridges absolute, from `baseDir` (before the config is frozen). */
export function resolveTlsPaths(config: Config, baseDir: string): void {
  const fix = <T extends { cert?: string | undefined; key?: string | undefined; ca?: string | undefined }>(o: T): void => {
    for (const k of ['cert', 'key', 'ca'] as const) {
      const p = o[k];
      if (p !== undefined) (o as Record<string, unknown>)[k] = resolve(baseDir, p);
    }
  };
  for (const l of config.listeners) if (l.type === 'mqtts' || l.type === 'wss') fix(l);
  for (const b of config.bridges) fix(b);
}
