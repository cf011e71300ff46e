/**
 * TLS files of the mqtts and wss listeners, read again on SIGHUP: after a renewal,
 * `systemctl reload outpost` (a certbot deploy hook, as for mosquitto) makes new connections
 * get the new certificate at once; open connections keep theirs. The listeners also poll
 * the files (broker/tls-material.ts), so a renewal without a reload applies within seconds.
 * The paths themselves are listener settings and need a restart (config/restart-settings.ts).
 */
import type { ReloadStep } from './step.js';

export interface TlsReloadable {
  /** Where the listener is in the config: `listeners[1]`. */
  where: string;
  reloadTls?(): 'reloaded' | 'unchanged' | 'failed';
}

export function listenerTlsStep(listeners: readonly TlsReloadable[]): ReloadStep {
  return {
    name: 'listener tls files',
    covers: [],
    async apply() {
      const changes: string[] = [];
      // A file that cannot be used yet is logged by the listener, which keeps its certificate.
      for (const l of listeners) if (l.reloadTls?.() === 'reloaded') changes.push(`${l.where} tls certificate reloaded`);
      return { changes };
    },
  };
}
