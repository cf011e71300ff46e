/**
 * auth.password_file, auth.acl_file and the password-check settings, live: the files are
 * read again on every reload (that is how `outpost passwd` and ACL edits take effect), and
 * the broker swaps to the new access control at once. Existing subscriptions are graded
 * again and later publishes, subscribes and deliveries follow the new rules; only the
 * clients of a user deleted from the password file or given a new password are disconnected. A malformed or missing file rejects the whole reload (file:line sentence).
 * What is worth a warning about the files (others may read them, no users) is said again at each reload.
 */
import { loadAccessControl, type AccessControl } from '../auth/access-control.js';
import type { ReloadStep } from './step.js';

export interface AuthStepDeps {
  setAccessControl(ac: AccessControl): void;
  /** The config file the paths are relative to. */
  configFile: string | undefined;
  /** Logs one warning sentence (AccessControl.warnings: a file others may read, a password file without users). */
  warn?(message: string): void;
}

export function authStep(deps: AuthStepDeps): ReloadStep {
  let prepared: AccessControl | undefined;
  return {
    name: 'auth',
    covers: ['auth.password_file', 'auth.acl_file', 'auth.failure_delay', 'auth.max_concurrent_checks'],
    async check(next) {
      prepared = await loadAccessControl(next.auth, deps.configFile);
    },
    async apply(next, prev) {
      const ac = prepared ?? (await loadAccessControl(next.auth, deps.configFile));
      prepared = undefined;
      deps.setAccessControl(ac);
      for (const w of ac.warnings) deps.warn?.(w);
      // Said one by one: dropping a file turns a control off, which an operator must see in the log.
      const changes: string[] = [];
      const file = (what: string, before: string | undefined, after: string | undefined): void => {
        if (after !== undefined) changes.push(before === undefined ? `${what} ${after} now used` : before === after ? `${what} read again` : `${what} now ${after} (was ${before})`);
        else if (before !== undefined) changes.push(`${what} ${before} no longer used: ${what === 'ACL file' ? 'no ACL, every client may publish and subscribe to every topic' : 'passwords are not checked any more'}`);
      };
      file('password file', prev.auth.password_file, next.auth.password_file);
      file('ACL file', prev.auth.acl_file, next.auth.acl_file);
      if (next.auth.failure_delay !== prev.auth.failure_delay) changes.push(`auth.failure_delay ${prev.auth.failure_delay} ms → ${next.auth.failure_delay} ms`);
      if (next.auth.max_concurrent_checks !== prev.auth.max_concurrent_checks) changes.push(`auth.max_concurrent_checks ${prev.auth.max_concurrent_checks} → ${next.auth.max_concurrent_checks}`);
      return { changes };
    },
  };
}
