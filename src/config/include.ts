/**
 * Included files: `serial.include: [devices/boiler.yaml, gps.yaml]` names device map files (relative to the
 * including file) whose `devices:` lists are appended to `serial.devices` before validation.
 * Each included file keeps its own YAML document, so the loader reports a problem in it at
 * that file's LINE:COL, under its own key path (devices[0].options.pattern).
 *
 *   main.yaml ─ serial.devices [0..n)          main document
 *   a.yaml    ─ devices        [n..n+a)  ─┐
 *   b.yaml    ─ devices        [n+a..)   ─┴─ appended, each with a Segment mapping paths back
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { isOutpostError, OutpostError } from '../core/errors.js';
import type { PathKey } from './issues.js';
import { PARSE_OPTIONS, sourceProblems } from './yaml-source.js';
import { isFileRefused, readBoundedText } from './read-file.js';

/** A YAML parse error as a sentence (its position is reported with it). */
export function yamlMessage(e: { code: string; message: string; pos: [number, number] }, text: string): string {
  if (e.code === 'MULTIPLE_DOCS') return 'invalid YAML: the file must hold one document; remove the extra "---"';
  if (e.code === 'DUPLICATE_KEY') {
    const key = /^[^:\n]*/.exec(text.slice(e.pos[0]))![0].trim();
    return `invalid YAML: key ${key} appears twice in one map; keep one of them`;
  }
  // The yaml package quotes the text it trips on: on the line of a password, that is the password.
  const start = text.lastIndexOf('\n', e.pos[0] - 1) + 1;
  const end = text.indexOf('\n', start);
  const secret = /^\s*(?:-\s+)?(password|passphrase|token)\s*:/.exec(text.slice(start, end < 0 ? undefined : end));
  if (secret !== null) return `invalid YAML in the value of ${secret[1]!} (not repeated here); write it as ${secret[1]!}: 'the value' (a ' in it written twice)`;
  const what = e.message.replace(/\.$/, '');
  const todo = (e.code === 'MISSING_CHAR' ? MISSING_CHAR_REMEDIES.find(([m]) => m.test(what))?.[1] : YAML_REMEDIES[e.code])
    ?? 'fix the YAML here (spaces for indentation, quotes around a value with ": " or a leading special character)';
  return `invalid YAML: ${what}; ${todo}`;
}

/** What to do about the YAML errors an edit by hand makes most. */
const YAML_REMEDIES: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BAD_INDENT: 'line up the keys of one map at the same column, with spaces, and close a [ or { list with its ] or }',
  BLOCK_AS_IMPLICIT_KEY: 'put quotes around a value that holds ": "',
  MULTILINE_IMPLICIT_KEY: 'write "key: value" on one line with a space after the colon, or quotes around a value that spans lines',
  BAD_SCALAR_START: 'put quotes around the value',
  UNEXPECTED_TOKEN: 'remove it or put quotes around the value it belongs to',
};

/** MISSING_CHAR covers several slips; its message says which. */
const MISSING_CHAR_REMEDIES: ReadonlyArray<[RegExp, string]> = [
  [/quote/, 'add the closing quote'],
  [/followed by map values/, 'write "key: value" with a space after the colon'],
  [/- indicator/, 'start each list entry with "- "'],
  [/./, 'add it'],
];

export interface Source {
  file: string;
  doc: Document;
  lines: LineCounter;
}

/** A run of merged list entries that came from an included file. */
export interface Segment {
  source: Source;
  /** Index in the merged serial.devices of this file's first device. */
  start: number;
  count: number;
}

export interface IncludeProblem {
  source: Source;
  /** A path in the source's document whose node the problem points at. */
  docPath: PathKey[];
  /** Where to point when it is not the node at docPath (an unknown key points at the key). */
  offset?: number;
  message: string;
}

export type ReadInclude = (path: string) => string;

const INCLUDE_PATH = ['serial', 'include'] as const;
const LIST_PATH = ['serial', 'devices'] as const;
const FILE_KEYS = ['devices'];

/** Only a regular file, bounded in size: a FIFO or /dev/zero named here hung the loader (read-file.ts). */
export const readIncludeFromDisk: ReadInclude = (path) => readBoundedText(path);

/** Nothing but blank lines and comments. */
export function isBlank(text: string): boolean {
  return text.split('\n').every((l) => /^\s*(#.*)?$/.test(l));
}

/** `read`, refusing a device map file with nothing in it (a reload: one caught half-way written). */
export function refusingEmpty(read: ReadInclude): ReadInclude {
  return (path) => {
    const text = read(path);
    // Cut after its first line, a file says `devices:` and nothing more: no devices either.
    if (isBlank(text.replace(/^devices:[ \t]*(#.*)?$/m, ''))) {
      throw new OutpostError('CONFIG_INVALID', `device map file ${path} is empty (saved half-way?); write its devices, then reload (devices: [] for none)`);
    }
    return text;
  };
}

/**
 * Appends the devices of every included file to data.serial.devices (mutating `data`, a fresh
 * toJS() result). Unreadable or malformed files become problems, and their devices are skipped.
 */
export function expandIncludes(data: unknown, main: Source, read: ReadInclude): { segments: Segment[]; problems: IncludeProblem[] } {
  const segments: Segment[] = [];
  const problems: IncludeProblem[] = [];
  const serial = (data as Record<string, unknown> | null)?.['serial'];
  if (serial === null || typeof serial !== 'object' || Array.isArray(serial)) return { segments, problems };
  const s = serial as Record<string, unknown>;
  const include = s['include'];
  if (!Array.isArray(include) || include.length === 0) return { segments, problems };
  // A list of the wrong type is left for the schema to report.
  let devices = s['devices'];
  if (devices === undefined) devices = s['devices'] = [];
  if (!Array.isArray(devices)) return { segments, problems };
  const baseDir = dirname(resolve(main.file));
  /** Resolved path → its first index in serial.include. */
  const seen = new Map<string, number>();
  include.forEach((entry, i) => {
    if (typeof entry !== 'string' || entry === '') return;
    const file = resolve(baseDir, entry);
    // Read twice, every device of the file was "used twice" and its port "already used" by itself.
    const first = seen.get(file);
    if (first !== undefined) {
      problems.push({ source: main, docPath: [...INCLUDE_PATH, i], message: `names ${file} again (serial.include[${first}] does); include each file once` });
      return;
    }
    seen.set(file, i);
    let text: string;
    try {
      text = read(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      const message = isOutpostError(err) ? err.message
        : isFileRefused(err) && err.kind === 'not-regular'
          ? `device map file ${file} ${err.reason}; list a YAML file of devices here (outpost reads no pipes, devices or directories)`
        : isFileRefused(err) ? `device map file ${file} ${err.reason}; check that this names the device map (one is a few kB)`
        : code === 'ENOENT' && /[*?[]/.test(entry) ? `no file is named ${file}: wildcards are not expanded; list each device map file`
        : `cannot read device map file ${file} (${code}); check the path (relative to this file)`;
      problems.push({ source: main, docPath: [...INCLUDE_PATH, i], message });
      return;
    }
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, ...PARSE_OPTIONS });
    // Named as the main file is (as given, from the working directory), so the name leads to it.
    const source: Source = { file: isAbsolute(entry) ? entry : join(dirname(main.file), entry), doc, lines };
    const fromSource = sourceProblems(text, doc);
    const alone = fromSource.find((p) => p.alone === true);
    for (const p of alone !== undefined ? [alone] : fromSource) problems.push({ source, docPath: p.path ?? [], offset: p.offset, message: p.message });
    if (alone !== undefined || fromSource.some((p) => p.blocking === true)) return;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push({ source, docPath: [], offset: e.pos[0], message: yamlMessage(e, text) });
      return;
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) return; // empty file: no devices
    if (!isMap(root)) {
      problems.push({ source, docPath: [], message: 'expected a map with a devices: list' });
      return;
    }
    let content: Record<string, unknown>;
    try {
      content = doc.toJS() as Record<string, unknown>;
    } catch (err) {
      // e.g. the alias bomb guard of the yaml package: a problem of this file, not a crash of outpost check
      problems.push({ source, docPath: [], offset: 0, message: `invalid YAML: ${(err as Error).message}` });
      return;
    }
    for (const pair of root.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (FILE_KEYS.includes(key)) continue;
      const offset = (pair.key as Node | null)?.range?.[0];
      problems.push({ source, docPath: [key], offset, message: `unknown key "${key}"; a device map file holds only: ${FILE_KEYS.join(', ')}` });
    }
    const list = content['devices'] ?? [];
    if (!Array.isArray(list)) {
      problems.push({ source, docPath: ['devices'], message: 'expected a list of devices' });
      return;
    }
    segments.push({ source, start: (devices as unknown[]).length, count: list.length });
    (devices as unknown[]).push(...list);
  });
  return { segments, problems };
}

/** Where a path of the merged config lives: an included file (and its own path) or the main file. */
export function locate(path: readonly PathKey[], segments: readonly Segment[]): { source: Source; path: PathKey[] } | undefined {
  if (path.length < 3 || path[0] !== LIST_PATH[0] || path[1] !== LIST_PATH[1] || typeof path[2] !== 'number') return undefined;
  const index = path[2];
  const seg = segments.find((g) => index >= g.start && index < g.start + g.count);
  return seg && { source: seg.source, path: ['devices', index - seg.start, ...path.slice(3)] };
}
