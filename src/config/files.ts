/**
 * The files a config names that start-up reads: the TLS certificates, keys and CAs of
 * listeners and bridges. A config loaded for use (`outpost check`, `outpost run`, a reload)
 * has them read once here, so a wrong path is reported with every other problem, at its
 * line, with exit code 2, instead of stopping start-up later with the first one alone.
 * Relative paths are read from the working directory, as start-up reads them.
 *
 * parseConfigText stays pure: this is the probe loadConfig hands it (a config parsed only
 * for its shape, like the example files in the tests, names files of another machine).
 */
import { readFileSync } from 'node:fs';
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
