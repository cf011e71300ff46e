/**
 * Turns zod issues into one operator sentence each. The loader adds FILE:LINE:COL
 * and the key path; this file only knows what is wrong and what to write instead.
 */
import { z } from 'zod';

export type PathKey = string | number;

/** How a value from the YAML file reads in a message. */
export function describeValue(value: unknown, secret = false): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  // A password's value goes to no log: its kind is enough to fix it.
  if (secret) return typeof value === 'string' ? 'a string' : typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'true or false' : 'a value';
  if (typeof value === 'string') {
    // PEM text (a key file given as the config, a key pasted as a value): its first line says what it is, the rest is the key.
    const pem = /-----BEGIN [^-\n]*-----/.exec(value);
    if (pem !== null) return `${JSON.stringify(pem[0])}… (${value.length} characters)`;
    // Not a whole file (a private key given as the config) into the journal: its start says what it is.
    return value.length > SHOWN ? `${JSON.stringify(value.slice(0, SHOWN))}… (${value.length} characters)` : JSON.stringify(value);
  }
  return String(value);
}

/** The longest string value quoted whole in a message. */
const SHOWN = 60;

/** Keys whose values are never repeated in a message (the logger redacts the same names). */
export const SECRET_KEYS: ReadonlySet<PropertyKey> = new Set(['password', 'passphrase', 'token']);

const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a map of keys',
  array: 'a list',
};

/**
 * One issue (not unrecognized_keys, see unknownKeyMessage) → "what is wrong".
 * `present` says whether the key exists in the file; `value` is what it holds.
 */
export function issueMessage(issue: z.core.$ZodIssue, present: boolean, value: unknown): string {
  const key = issue.path[issue.path.length - 1];
  // A discriminated union (listeners[].type) names its options on the issue.
  const options = issue.code === 'invalid_union' ? (issue as { options?: unknown[] }).options : undefined;
  // A cross-key check on a key that is absent (params.absent) says itself what to add.
  if (!present && issue.code === 'custom' && issue.params?.['absent'] === true) return issue.message;
  // A cross-key check whose message is complete without the value (it names another key).
  if (issue.code === 'custom' && issue.params?.['plain'] === true) return issue.message;
  if (!present && typeof key === 'string') {
    const hint = issue.code === 'invalid_value' && issue.values.length === 1 ? `: ${String(issue.values[0])}`
      : options !== undefined ? `: ${options.map(String).join(' | ')}` : '';
    return `missing required key "${key}"; add ${key}${hint}`;
  }
  const got = `, got ${describeValue(value, key !== undefined && SECRET_KEYS.has(key))}`;
  switch (issue.code) {
    case 'invalid_key':
      // A record's key that fails its own check (mqttsn.predefined_topics: { abc: … }): say what a key
      // must be and show the key, not the value under it.
      return `${issue.issues[0]?.message ?? issue.message}, got ${JSON.stringify(String(key))}`;
    case 'invalid_type':
      // `listeners:` written as one map instead of a list of them: the usual YAML slip.
      if (issue.expected === 'array' && value !== null && typeof value === 'object' && !Array.isArray(value)) return `expected a list, got a map; start each entry with "- "`;
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}${got}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}${got}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${entries(issue.minimum)}; add one`;
      if (issue.origin === 'string') return 'must not be empty';
      // A schema's own message (a negative size or duration: the key's range, in its unit).
      if (!issue.message.startsWith('Too small')) return `${issue.message}${got}`;
      return `must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}${got}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${entries(issue.maximum)}`;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}${got}`;
    default:
      // Our own schema messages (units, custom checks) already say what to write.
      return `${issue.message}${got}`;
  }
}

function entries(n: number | bigint): string {
  return `${String(n)} ${n === 1 ? 'entry' : 'entries'}`;
}

/** `unknown key "prot"; did you mean "port"?` or the list of keys allowed there. */
export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const best = closest(key, allowed);
  if (best !== undefined) return `unknown key "${key}"; did you mean "${best}"?`;
  if (allowed.length === 0) return `unknown key "${key}"; remove it`;
  return `unknown key "${key}"; remove it or use one of: ${allowed.join(', ')}`;
}

function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // A third of the word may be wrong: "prot"→"port", "max_packet_sise"→"max_packet_size".
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

/** Levenshtein distance with adjacent transpositions (typing slips), two rows. */
export function editDistance(a: string, b: string): number {
  let prevPrev: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, prevPrev[j - 2]! + 1);
      }
      row.push(d);
    }
    prevPrev = prev;
    prev = row;
  }
  return prev[b.length]!;
}

type Def = Record<string, unknown> & { type: string };
const defOf = (s: z.core.$ZodType): Def => s._zod.def as unknown as Def;
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly']);

/** The schema under default/optional/… wrappers and pipes. */
function unwrap(s: z.core.$ZodType): z.core.$ZodType {
  for (;;) {
    const def = defOf(s);
    if (WRAPPERS.has(def.type)) s = def['innerType'] as z.core.$ZodType;
    else if (def.type === 'pipe') s = def['in'] as z.core.$ZodType;
    else return s;
  }
}

/** The options of a discriminated union that the data's tag selects (all of them if it selects none). */
function chosenOptions(def: Def, value: unknown): z.core.$ZodType[] {
  const options = def['options'] as z.core.$ZodType[];
  const tagKey = def['discriminator'];
  if (typeof tagKey !== 'string' || value === null || typeof value !== 'object') return options;
  const tag = (value as Record<string, unknown>)[tagKey];
  const chosen = options.filter((o) => {
    const od = defOf(unwrap(o));
    const field = od.type === 'object' ? (od['shape'] as Record<string, z.core.$ZodType>)[tagKey] : undefined;
    const fd = field === undefined ? undefined : defOf(unwrap(field));
    return fd?.type === 'literal' && (fd['values'] as unknown[]).includes(tag);
  });
  return chosen.length > 0 ? chosen : options;
}

/**
 * The keys an object schema allows at `path` (through defaults, arrays, pipes, unions). With
 * the parsed `data`, a discriminated union counts only the option its tag selects: a serial
 * device's options are those of its own driver, not of every driver.
 */
export function allowedKeysAt(schema: z.core.$ZodType, path: readonly PathKey[], data?: unknown): string[] {
  const found = new Set<string>();
  const at = (value: unknown, key: PathKey): unknown => (value !== null && typeof value === 'object' ? (value as Record<PathKey, unknown>)[key] : undefined);
  const visit = (schemaHere: z.core.$ZodType, rest: readonly PathKey[], value: unknown): void => {
    const s = unwrap(schemaHere);
    const def = defOf(s);
    switch (def.type) {
      case 'union':
        for (const option of chosenOptions(def, value)) visit(option, rest, value);
        return;
      case 'array':
        if (rest.length > 0) visit(def['element'] as z.core.$ZodType, rest.slice(1), at(value, rest[0]!));
        return;
      case 'object': {
        const shape = def['shape'] as Record<string, z.core.$ZodType>;
        if (rest.length === 0) {
          for (const k of Object.keys(shape)) found.add(k);
        } else if (typeof rest[0] === 'string' && shape[rest[0]]) {
          visit(shape[rest[0]]!, rest.slice(1), at(value, rest[0]));
        }
        return;
      }
      default:
        return;
    }
  };
  visit(schema, path, data);
  return [...found];
}
