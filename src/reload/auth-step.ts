/**
 * auth.password_file, auth.acl_file and the password-check settings, live: the files are
 * read again on every reload (that is how `outpost passwd` and ACL edits take effect), and
 * the broker swaps to the new access control at once. Nobody is disconnected: existing
 * subscriptions are graded again and later publishes, subscribes and deliveries follow the
 * new rules. A malformed or missing file rejects the whole reload (file:line sentence).
 */
import { loadAccessControl, type AccessControl } from '../auth/access-control.js';
import type { ReloadStep } from './step.js';

export interface AuthStepDeps {
  setAccessControl(ac: AccessControl): void;
  /** The config file the paths are relative to. */
  configFile: string | undefined;
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
      const files = [next.auth.password_file !== undefined ? 'password file' : undefined, next.auth.acl_file !== undefined ? 'ACL file' : undefined].filter((x) => x !== undefined);
      const had = prev.auth.password_file !== undefined || prev.auth.acl_file !== undefined;
      if (files.length > 0) return { changes: [`${files.join(' and ')} read again`] };
      return { changes: had ? ['password file and ACL no longer used'] : [] };
    },
  };
}
