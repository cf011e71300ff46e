/**
 * Reads the YAML config and validates it against the schema.
 *
 *   text ─ yaml.parseDocument (keeps node offsets) ─ toJS ─ configSchema.safeParse ─ deepFreeze
 *
 * Every problem (YAML syntax and schema alike) becomes one line
 * `FILE:LINE:COL key.path: what is wrong`, and all of them are reported at once so
 * an operator fixes the file in one pass.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { OutpostError } from '../core/errors.js';
import { allowedKeysAt, issueMessage, unknownKeyMessage, type PathKey } from './issues.js';
import { configSchema, type Config } from './schema.js';

interface Problem {
  offset: number;
  /** null for problems that belong to no key (YAML syntax). */
  path: readonly PathKey[] | null;
  message: string;
}

/** The embedded default: what the gateway runs with when no file is given. */
export function defaultConfig(): Config {
  return deepFreeze(configSchema.parse({}));
}

/** Loads and validates a config file; no file means the embedded default. */
export function loadConfig(file?: string): Config {
  if (file === undefined) return defaultConfig();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OutpostError(
      'CONFIG_UNREADABLE',
      `${file}: cannot read the config file (${osReason(err)}); check the path and its permissions`,
      { cause: err },
    );
  }
  return parseConfigText(text, file);
}

/** Pure: YAML text → frozen Config, or OutpostError('CONFIG_INVALID') listing every problem. */
export function parseConfigText(text: string, fileName: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const where = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${fileName}:${line}:${col}`;
  };
  const fail = (problems: Problem[]): never => {
    const lines = problems
      .sort((a, b) => a.offset - b.offset)
      .map((p) => `${where(p.offset)} ${formatPath(p.path)}${p.message}`);
    throw new OutpostError('CONFIG_INVALID', [...new Set(lines)].join('\n'));
  };

  if (doc.errors.length > 0) {
    fail(doc.errors.map((e) => ({ offset: e.pos[0], path: null, message: yamlMessage(e.code, e.message) })));
  }

  let data: unknown;
  try {
    data = doc.toJS() ?? {}; // an empty file or one with only comments means "all defaults"
  } catch (err) {
    // e.g. the alias bomb guard of the yaml package
    fail([{ offset: 0, path: null, message: `invalid YAML: ${(err as Error).message}` }]);
  }

  const result = configSchema.safeParse(data);
  if (result.success) return deepFreeze(result.data);

  const problems: Problem[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path as PathKey[];
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(configSchema, path);
      for (const key of issue.keys) {
        const pair = pairAt(doc, path, key);
        problems.push({
          offset: pair ? nodeOffset(pair.key) : offsetOf(doc, path),
          path: [...path, key],
          message: unknownKeyMessage(key, allowed),
        });
      }
      continue;
    }
    const { present, value } = lookup(data, path);
    problems.push({ offset: offsetOf(doc, path), path, message: issueMessage(issue, present, value) });
  }
  return fail(problems);
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
  const text = path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
  return `${text}: `;
}

function yamlMessage(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return 'invalid YAML: the file must hold one document; remove the extra "---"';
  return `invalid YAML: ${message.replace(/\.$/, '')}`;
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
  return parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === key);
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
