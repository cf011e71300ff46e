/**
 * What a YAML file can get wrong that the YAML parser lets through, for the main config and
 * the device maps alike:
 *
 * - an encoding other than UTF-8 (an editor set to Latin-1 or Windows-1252, Notepad's UTF-16):
 *   the file is read as UTF-8, so `unit: °C` became "\uFFFDC" on every reading and `password:
 *   pässword` a password the cloud refuses, with `outpost check` saying "ok";
 * - a YAML tag the loader does not resolve (`password: !secret cloud`, `!env CLOUD_PASSWORD`,
 *   `!include devices.yaml`, as Home Assistant and other tools take them): the yaml package
 *   warns and keeps the text after the tag, so the password was the word "cloud";
 * - `${CLOUD_PASSWORD}`, as shells and docker compose expand it: outpost does not, so the value
 *   was those characters;
 * - a YAML 1.1 tag (`!!binary`, `!!set`, `!!omap`, `!!timestamp`) turns its value into a
 *   Buffer, Set, Map or Date, which the schema saw as a map (a hundred "unknown key" lines for
 *   a Buffer's methods, or a `broker: !!omap [...]` read as an empty map, all defaults):
 *   PARSE_OPTIONS leaves them unresolved, so they are reported like any other tag.
 */
import { isPair, isScalar, isSeq, visit, type Document, type Node } from 'yaml';
import { SECRET_KEYS, type PathKey } from './issues.js';

/** Options of every parseDocument of a config or device map file. */
export const PARSE_OPTIONS = { prettyErrors: false, resolveKnownTags: false } as const;

export interface SourceProblem {
  /** Character offset in the text. */
  offset: number;
  /** The key the problem is under, where it is under one. */
  path: PathKey[] | null;
  /** The file is no UTF-8 text at all (UTF-16, binary): its other problems would be noise, a line per byte run. */
  alone?: true;
  /** The document cannot become data (toJS throws on an alias without its anchor). */
  blocking?: true;
  message: string;
}

/** What `text` holds that its document does not say: a wrong encoding, unresolved tags, `${NAME}` values, aliases without their anchor. */
export function sourceProblems(text: string, doc: Document): SourceProblem[] {
  const problems: SourceProblem[] = [];
  const encoding = encodingProblem(text);
  if (encoding !== undefined) problems.push(encoding);
  for (const w of doc.warnings) {
    if (w.code !== 'TAG_RESOLVE_FAILED') continue;
    const tag = text.slice(w.pos[0], w.pos[1]);
    const path = pathOf(doc, (n) => n.tag !== undefined && nodeStart(n) >= w.pos[1]);
    problems.push({
      offset: w.pos[0],
      path,
      // A password that starts with "!" is read as a tag: the tag is the password, not repeated.
      message: isSecret(path)
        ? 'a value that starts with "!" is a YAML tag, and outpost resolves none (no !secret or !env; not repeated here); write the value itself, in quotes if it starts with "!"'
        : `YAML tag ${tag} is not supported (the value after it would be read as plain text: outpost resolves no !secret, !env or !include); remove the tag and write the value itself, or put quotes around a value that starts with "!"`,
    });
  }
  // `${NAME}` is not expanded: the value would be those characters (a user name, a client id, a password).
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !ENV_REFERENCE.test(node.value)) return;
      const path = pathOf(doc, (n) => n === node);
      problems.push({
        offset: nodeStart(node),
        path,
        message: `${isSecret(path) ? 'an environment variable reference (not repeated here)' : node.value} is not expanded: outpost reads no environment variables in its config; write the value itself`,
      });
    },
  });
  // toJS throws on an alias without its anchor: a value that starts with "*" (a password, a pattern).
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) !== undefined) return;
      const path = pathOf(doc, (n) => n === node);
      problems.push({
        offset: nodeStart(node),
        path,
        blocking: true,
        message: isSecret(path)
          ? 'a value that starts with "*" is a YAML alias (not repeated here); put quotes around the value'
          : `*${node.source} is a YAML alias, and no anchor &${node.source} comes before it; put quotes around a value that starts with "*"`,
      });
    },
  });
  return problems;
}

/** A whole value of the form ${NAME} or ${NAME:-default}, as shells and docker compose expand them. */
const ENV_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-=?+][^}]*)?\}$/;

function isSecret(path: readonly PathKey[] | null): boolean {
  const last = path?.[path.length - 1];
  return last !== undefined && SECRET_KEYS.has(last);
}

const nodeStart = (n: Node): number => (n as { range?: [number, number, number] }).range?.[0] ?? -1;

/**
 * A file read as UTF-8 that was not: Node's decoder puts U+FFFD for every byte that is not
 * UTF-8, and a NUL is no YAML character (UTF-16 has one beside every ASCII letter). One
 * problem per file is enough: the whole file has to be saved again.
 */
function encodingProblem(text: string): SourceProblem | undefined {
  if (text.startsWith('\uFFFD\uFFFD') || text.includes('\u0000')) {
    return { offset: 0, path: null, alone: true, message: 'the file is not UTF-8 text (UTF-16, as some Windows editors save, or not text at all); save it as UTF-8, or name the right file' };
  }
  const bad = text.indexOf('\uFFFD');
  if (bad < 0) return undefined;
  return {
    offset: bad,
    path: null,
    message: 'the file is not UTF-8 text here (saved as Latin-1 or Windows-1252?); save it as UTF-8, or the text is read wrongly',
  };
}

/** The key path of the first node (in document order, the one starting earliest) that `match` accepts. */
function pathOf(doc: Document, match: (n: Node) => boolean): PathKey[] | null {
  let found: PathKey[] | null = null;
  let best = Infinity;
  visit(doc, {
    Node(_key, node, ancestors) {
      const start = nodeStart(node);
      if (start < 0 || start >= best || !match(node)) return;
      best = start;
      const chain = [...ancestors, node];
      found = [];
      chain.forEach((n, i) => {
        if (isPair(n)) found!.push(isScalar(n.key) ? String(n.key.value) : String(n.key));
        else if (isSeq(n) && i + 1 < chain.length) found!.push(n.items.indexOf(chain[i + 1] as never));
      });
    },
  });
  return found;
}
