/** Config errors as tests read them: one line per problem, each `FILE:LINE:COL key: sentence`. */
import { isOutpostError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';

/** The lines of the CONFIG_INVALID error `load` throws; fails the test if it loads. */
export function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (isOutpostError(err, 'CONFIG_INVALID')) return err.message.split('\n');
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

/** The problems parseConfigText finds in `text`, read as the file `file`. */
export function configProblems(text: string, file = 'c.yaml'): string[] {
  return problemsOf(() => parseConfigText(text, file));
}
