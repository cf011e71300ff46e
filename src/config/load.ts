/**
 * Reads the YAML config and validates it against the schema.
 *
 *   text ─ yaml.parseDocument (keeps node offsets) ─ toJS ─ expandIncludes ─ configSchema.safeParse ─ deepFreeze
 *
 * Every problem (YAML syntax and schema alike) becomes one line
 * `FILE:LINE:COL key.path: what is wrong`, and all of them are reported at once so
 * an operator fixes the file in one pass.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { OutpostError } from '../core/errors.js';
import { expandIncludes, isBlank, locate, readIncludeFromDisk, refusingEmpty, yamlMessage, type ReadInclude, type Source } from './include.js';
import { resolveTlsPaths, unreadableFiles, type PathProblem } from './files.js';
import { allowedKeysAt, issueMessage, unknownKeyMessage, type PathKey } from './issues.js';
import { configSchema, type Config } from './schema.js';
import { authSchema, type AuthConfig } from './auth-schema.js';
import { PARSE_OPTIONS, sourceProblems } from './yaml-source.js';
import { isFileRefused, readBoundedText, type FileRefused } from './read-file.js';

interface Problem {
  /** The file the problem is in: the main one or an included device map. */
  source: Source;
  offset: number;
  /** null for problems that belong to no key (YAML syntax). */
  path: readonly PathKey[] | null;
  message: string;
}

/** The embedded default: what the gateway runs with when no file is given. */
export function defaultConfig(): Config {
  return deepFreeze(configSchema.parse({}));
}

/**
 * Loads and validates a config file; no file means the embedded default. `checkFiles`: the
 * TLS files it names must be readable too (for a config about to be used; files.ts).
 * `refuseEmpty` (a reload): a file with nothing but blanks and comments is refused, an included
 * device map too (`devices: []` is a map without devices). At start
 * it means the defaults, but a running gateway that reads one has most likely caught an
 * editor or a copy half-way, and applying it would stop every bridge and device.
 */
export function loadConfig(file?: string, opts: { checkFiles?: boolean; refuseEmpty?: boolean } = {}): Config {
  if (file === undefined) return defaultConfig();
  let text: string;
  try {
    text = readBoundedText(file);
  } catch (err) {
    if (isFileRefused(err)) throw new OutpostError('CONFIG_UNREADABLE', refusedConfigMessage(err), { cause: err });
    const dir = dirname(file);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(dir)) {
      throw new OutpostError(
        'CONFIG_UNREADABLE',
        `${file}: the config directory ${dir} does not exist; create it with the example config (systemd/install.sh does) or give --config another file`,
        { cause: err },
      );
    }
    throw new OutpostError(
      'CONFIG_UNREADABLE',
      `${file}: cannot read the config file (${osReason(err)}); check the path and its permissions`,
      { cause: err },
    );
  }
  if (opts.refuseEmpty === true && isBlank(text)) {
    throw new OutpostError('CONFIG_INVALID', `${file}: the config file is empty (saved half-way?); write the whole config, then reload`);
  }
  // A device map caught half-way would remove every device it lists (their retained state cleared).
  const readInclude = opts.refuseEmpty === true ? refusingEmpty(readIncludeFromDisk) : readIncludeFromDisk;
  return parseConfigText(text, file, readInclude, opts.checkFiles === true ? (c) => unreadableFiles(c) : undefined, dirname(file));
}

/**
 * A config file named that is no regular file (a FIFO, /dev/zero, a directory) or far too
 * large to be one: one sentence, as the other config errors are (read-file.ts).
 */
function refusedConfigMessage(err: FileRefused): string {
  return err.kind === 'not-regular'
    ? `${err.file}: the config file ${err.reason}; give the path of the YAML config file itself (outpost reads no pipes, devices or directories)`
    : `${err.file}: the config file ${err.reason}; check that it names the YAML config file (one is a few kB)`;
}

/**
 * YAML text → frozen Config, or OutpostError('CONFIG_INVALID') listing every problem.
 * Pure but for included device map files, read through `readInclude` (relative to fileName),
 * and what `probe` finds in a config of the right shape (loadConfig: unreadable TLS files).
 */
export function parseConfigText(
  text: string,
  fileName: string,
  readInclude: ReadInclude = readIncludeFromDisk,
  probe?: (config: Config) => PathProblem[],
  /** Given, relative TLS file paths are taken from this directory (loadConfig: the config file's). */
  baseDir?: string,
): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, ...PARSE_OPTIONS });
  const main: Source = { file: fileName, doc, lines: lineCounter };
  // A wrong encoding or a tag the parser let through (yaml-source.ts), reported with the rest.
  const found = sourceProblems(text, doc);
  const fromSource: Problem[] = found.map((p) => ({ source: main, offset: p.offset, path: p.path, message: p.message }));
  const order = new Map<Source, number>([[main, 0]]);
  const where = (p: Problem): string => {
    const { line, col } = p.source.lines.linePos(p.offset);
    return `${p.source.file}:${line}:${col}`;
  };
  const fail = (problems: Problem[]): never => {
    const rank = (p: Problem) => order.get(p.source) ?? order.size;
    const lines = problems
      .sort((a, b) => rank(a) - rank(b) || a.offset - b.offset)
      .map((p) => `${where(p)} ${formatPath(p.path)}${p.message}`);
    throw new OutpostError('CONFIG_INVALID', [...new Set(lines)].join('\n'));
  };

  // A file that is no UTF-8 text at all: one line, not one per byte run the YAML parser trips on.
  if (found.some((p) => p.alone === true)) fail(fromSource.filter((_, i) => found[i]!.alone === true));
  if (doc.errors.length > 0) {
    fail([...fromSource, ...doc.errors.map((e) => ({ source: main, offset: e.pos[0], path: null, message: yamlMessage(e, text) }))]);
  }
  if (found.some((p) => p.blocking === true)) fail(fromSource);

  let data: unknown;
  try {
    data = doc.toJS() ?? {}; // an empty file or one with only comments means "all defaults"
  } catch (err) {
    // e.g. the alias bomb guard of the yaml package
    fail([...fromSource, { source: main, offset: 0, path: null, message: `invalid YAML: ${(err as Error).message}` }]);
  }

  const included = expandIncludes(data, main, readInclude);
  for (const seg of included.segments) if (!order.has(seg.source)) order.set(seg.source, order.size);
  // Files that gave no devices (a YAML error) in the order their problems were found.
  for (const p of included.problems) if (!order.has(p.source)) order.set(p.source, order.size);
  const problems: Problem[] = [
    ...fromSource,
    ...included.problems.map((p) => ({
      source: p.source,
      offset: p.offset ?? offsetOf(p.source.doc, p.docPath),
      path: p.docPath.length > 0 ? p.docPath : null,
      message: p.message,
    })),
  ];

  const result = configSchema.safeParse(data);
  if (result.success) {
    if (baseDir !== undefined) resolveTlsPaths(result.data, baseDir);
    for (const p of probe?.(result.data) ?? []) problems.push({ source: main, offset: offsetOf(main.doc, p.path), path: p.path, message: p.message });
    if (problems.length === 0) return deepFreeze(result.data);
  }

  for (const issue of result.error?.issues ?? []) {
    const path = issue.path as PathKey[];
    // A problem inside an included device is reported in that file, under its own path.
    const at = locate(path, included.segments);
    const src = at?.source ?? main;
    const docPath = at?.path ?? path;
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(configSchema, path, data);
      for (const key of issue.keys) {
        const pair = pairAt(src.doc, docPath, key);
        problems.push({
          source: src,
          offset: pair ? nodeOffset(pair.key) : offsetOf(src.doc, docPath),
          path: [...docPath, key],
          // A device map file checked on its own (`outpost check devices.yaml`): say how it is checked.
          message: docPath.length === 0 && key === 'devices'
            ? 'unknown key "devices": a device map file is checked through the config that includes it (serial.include), or list the devices under serial.devices'
            : unknownKeyMessage(key, allowed),
        });
      }
      continue;
    }
    const { present, value } = lookup(data, path);
    problems.push({ source: src, offset: offsetOf(src.doc, docPath), path: docPath, message: issueMessage(issue, present, value) });
  }
  return fail(problems);
}

/**
 * The password file and ACL named by a config file that did not load, read leniently (its
 * other keys may be wrong), so `outpost check` reports their problems in the same run as the
 * config's: one round of fixes. Undefined when the file names neither or cannot be read as YAML.
 */
export function authFilesNamed(file: string): AuthConfig | undefined {
  try {
    const data = parseDocument(readBoundedText(file), PARSE_OPTIONS).toJS() as { auth?: unknown } | null;
    const auth = data?.auth;
    if (auth === null || typeof auth !== 'object') return undefined;
    const named = (key: string): string | undefined => {
      const v = (auth as Record<string, unknown>)[key];
      return typeof v === 'string' && v !== '' ? v : undefined;
    };
    const files = { password_file: named('password_file'), acl_file: named('acl_file') };
    if (files.password_file === undefined && files.acl_file === undefined) return undefined;
    return authSchema.parse(Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)));
  } catch {
    return undefined;
  }
}

/** Recursively freezes a parsed config so no component can change what others see. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function formatPath(path: readonly PathKey[] | null): string {
  if (path === null) return '';
  if (path.length === 0) return 'top level: ';
  // An empty key (a line starting with ": ") is shown as "", not as nothing.
  const text = path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${k === '' ? '""' : k}`)).join('');
  return `${text}: `;
}


function osReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  // "ENOENT: no such file or directory, open 'x'" → "no such file or directory, ENOENT"
  const m = /^[A-Z]+: ([^,]+)/.exec(e.message ?? '');
  return m ? `${m[1]}, ${e.code}` : String(e.message ?? err);
}

/** Whether `path` exists in the parsed data, and what it holds. */
function lookup(data: unknown, path: readonly PathKey[]): { present: boolean; value: unknown } {
  let cur: unknown = data;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return { present: false, value: undefined };
    cur = (cur as Record<PathKey, unknown>)[k];
  }
  return { present: true, value: cur };
}

function nodeOffset(node: unknown): number {
  const range = (node as Node | null)?.range;
  return range ? range[0] : 0;
}

function pairAt(doc: Document, parentPath: readonly PathKey[], key: string): Pair | undefined {
  const parent = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  if (!isMap(parent)) return undefined;
  // A key left out (`: value`) is null in the document and "" in the data.
  return parent.items.find((p) => (isScalar(p.key) ? String(p.key.value ?? '') : p.key === null ? '' : String(p.key)) === key);
}

/**
 * Where to point for a problem at `path`: the value node; for an empty value, its key;
 * for a missing key, the nearest map or list that does exist (its parent).
 */
function offsetOf(doc: Document, path: readonly PathKey[]): number {
  for (let n = path.length; n > 0; n--) {
    const sub = path.slice(0, n);
    const node = doc.getIn(sub, true);
    if (node === undefined) continue;
    const last = sub[sub.length - 1]!;
    if (isScalar(node) && node.value === null && typeof last === 'string') {
      const pair = pairAt(doc, sub.slice(0, -1), last);
      if (pair) return nodeOffset(pair.key);
    }
    if (isMap(node) || isSeq(node) || isScalar(node)) return nodeOffset(node);
  }
  return nodeOffset(doc.contents);
}
