/**
 * Cross-key checks (unique names, ports, client ids) that run even when other keys are wrong.
 *
 * zod skips a refinement once anything before it failed with an aborting issue: a wrong
 * `log.level` hid two listeners on one port, an unknown driver hid two devices with one id,
 * and `outpost check` took two rounds of fixes instead of one. With `{ when: objectParsed }`
 * the refinement runs whenever its own value is of the right kind, and skips only the entries
 * that failed themselves (`parsed(ctx, path)`), whose values are still the raw YAML.
 */
import type { z } from 'zod';

type Payload = z.core.ParsePayload;
type PathKey = PropertyKey;

const aborting = (issue: { continue?: boolean }) => issue.continue !== true;

/** `when` of a cross-key superRefine: runs unless the value itself is of the wrong kind. */
export const whenParsed = {
  when: (payload: Payload): boolean =>
    payload.value !== null && typeof payload.value === 'object' && !payload.issues.some((i) => aborting(i) && (i.path ?? []).length === 0),
};

/** Whether the value at `path` (relative to the refined value) parsed without an aborting issue at or below it. */
export function parsed(payload: Payload, path: readonly PathKey[]): boolean {
  return !payload.issues.some((i) => aborting(i) && path.every((k, n) => i.path?.[n] === k));
}
