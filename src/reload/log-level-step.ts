/** log.level, live: pino children follow their root's level, so one assignment reaches them all. */
import type { Logger } from 'pino';
import type { ReloadStep } from './step.js';

export function logLevelStep(root: Logger): ReloadStep {
  return {
    name: 'log level',
    covers: ['log.level'],
    async apply(next, prev) {
      if (next.log.level === prev.log.level && root.level === next.log.level) return { changes: [] };
      root.level = next.log.level;
      return { changes: [`log level ${prev.log.level} → ${next.log.level}`] };
    },
  };
}
