/**
 * The problems found in a password file or an ACL: all of them (like the YAML config's),
 * each `file:line: what is wrong; what to do`, thrown as one CONFIG_INVALID error whose
 * message has one line per problem. A file that is not text at all (a binary named by
 * mistake) would give a line per byte run: past MAX_REPORTED per file the rest are counted.
 */
import { OutpostError } from '../core/errors.js';

export const MAX_REPORTED = 50;

/** Throws the problems of each file given (one list per file), if there are any. */
export function throwFileProblems(...perFile: { file: string; problems: readonly string[] }[]): void {
  const lines = perFile.flatMap(({ file, problems }) => {
    if (problems.length <= MAX_REPORTED) return problems;
    const more = problems.length - MAX_REPORTED;
    return [...problems.slice(0, MAX_REPORTED), `${file}: ${more} more ${more === 1 ? 'problem' : 'problems'} not shown; fix the ones above first`];
  });
  if (lines.length > 0) throw new OutpostError('CONFIG_INVALID', lines.join('\n'));
}
