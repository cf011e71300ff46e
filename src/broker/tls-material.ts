/**
 * TLS material of a listener: the files named in config, read into the options of
 * tls.createServer / setSecureContext, and watched so a renewed certificate applies to
 * new connections without a restart (open connections keep the context they shook hands with).
 *
 * Renewal tools write cert and key one after the other, or replace the files by rename;
 * fs.watchFile polls the path, so both are seen. A reload that fails (a half-written file,
 * a key that does not match the certificate yet) keeps the previous context and logs a
 * warning; the next change tries again.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { PeerWarnings } from './peer-warnings.js';
import type { TlsListenerConfig } from '../config/schema.js';
import { OutpostError } from '../core/errors.js';

export interface TlsServerOptions extends SecureContextOptions {
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** Reads the files; throws one sentence naming the key and file when one cannot be read or used. */
export function loadTlsOptions(l: TlsListenerConfig, where: string): TlsServerOptions {
  const read = (key: 'cert' | 'key' | 'ca', file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new OutpostError('CONFIG_INVALID', `${where}.${key}: cannot read ${file} (${code}); fix the path or its permissions`, { cause: err });
    }
  };
  const options: TlsServerOptions = {
    cert: read('cert', l.cert),
    key: read('key', l.key),
    minVersion: l.min_version,
    requestCert: l.require_certificate,
    // Checked by refuseUnverifiedClients instead: node's own check destroys the socket silently,
    // and an operator needs the line that says which client was refused and why.
    rejectUnauthorized: false,
  };
  if (l.ca !== undefined) options.ca = read('ca', l.ca);
  try {
    createSecureContext(options); // a key that does not match, or a file that is not PEM, fails here
  } catch (err) {
    throw new OutpostError('CONFIG_INVALID', `${where}: ${l.cert} / ${l.key} cannot be used (${(err as Error).message}); check the certificate, key and ca files`, { cause: err });
  }
  return options;
}

/**
 * Watches the TLS files of a listener and hands each good reload to apply(); `reload()` does
 * the same at once (SIGHUP: `systemctl reload` after a renewal, as with mosquitto, applies
 * without waiting for the next poll). Files that were touched but hold what is applied already
 * are not applied again.
 */
export class TlsFileWatcher {
  private readonly files: string[];
  private watching = false;
  /** cert, key and ca as last applied (empty when none). */
  private applied: Buffer[] | undefined;
  private readonly initialCert: Buffer | undefined;

  constructor(
    private readonly listener: TlsListenerConfig,
    private readonly where: string,
    private readonly apply: (options: TlsServerOptions) => void,
    private readonly log: Logger,
    private readonly intervalMs = 2000,
    current?: TlsServerOptions,
  ) {
    this.files = [listener.cert, listener.key, ...(listener.ca !== undefined ? [listener.ca] : [])];
    if (current !== undefined) this.applied = contents(current);
    this.initialCert = Buffer.isBuffer(current?.cert) ? current.cert : undefined;
  }

  start(): void {
    if (this.watching) return;
    this.watching = true;
    if (this.initialCert !== undefined) warnOutsideValidity(this.initialCert, this.listener.cert, this.where, this.log);
    for (const file of this.files) watchFile(file, { interval: this.intervalMs, persistent: false }, this.changed);
  }

  stop(): void {
    if (!this.watching) return;
    this.watching = false;
    for (const file of this.files) unwatchFile(file, this.changed);
  }

  /** Reads the files now; applies them when they changed and can be used, else keeps the previous certificate. */
  reload(): 'reloaded' | 'unchanged' | 'failed' {
    let options: TlsServerOptions;
    try {
      options = loadTlsOptions(this.listener, this.where);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'tls files changed but cannot be used yet; keeping the previous certificate');
      return 'failed';
    }
    const next = contents(options);
    if (this.applied !== undefined && next.every((b, i) => b.equals(this.applied![i]!))) return 'unchanged';
    this.apply(options);
    this.applied = next;
    this.log.info({ cert: this.listener.cert }, 'tls certificate reloaded');
    if (Buffer.isBuffer(options.cert)) warnOutsideValidity(options.cert, this.listener.cert, this.where, this.log);
    return 'reloaded';
  }

  private readonly changed = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return;
    this.reload();
  };
}

/**
 * A warn line when the listener's own certificate (the first in its file) has expired or is
 * not valid yet: every client refuses it, and nothing else says why. Checked at start and at
 * each reload of the files; the clock is the wall clock, as the clients' is.
 */
export function warnOutsideValidity(cert: Buffer, file: string, where: string, log: Logger, now = Date.now()): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return; // loadTlsOptions accepted it: a form X509Certificate does not read, nothing to say
  }
  const validTo = Date.parse(x509.validTo);
  const validFrom = Date.parse(x509.validFrom);
  const fields = { cert: file, setting: `${where}.cert` };
  if (now > validTo) log.warn({ ...fields, validTo: new Date(validTo).toISOString() }, 'listener certificate has expired: clients refuse it; renew it');
  else if (now < validFrom) log.warn({ ...fields, validFrom: new Date(validFrom).toISOString() }, 'listener certificate is not valid yet: clients refuse it (is the clock behind?)');
}

function contents(o: TlsServerOptions): Buffer[] {
  return [o.cert, o.key, o.ca].map((v) => (Buffer.isBuffer(v) ? v : Buffer.alloc(0)));
}

/** The CN of a verified client certificate, if any. */
export function certificateCn(socket: { getPeerCertificate(): { subject?: Record<string, string | string[] | undefined> } }): string | undefined {
  const cn = socket.getPeerCertificate().subject?.['CN'];
  return Array.isArray(cn) ? cn[0] : cn;
}

/**
 * use_identity_as_username: the certificate's CN is the client's user name, so a verified
 * certificate without one identifies nobody. Cut before any MQTT byte is read, with one warn
 * line, rather than letting the CONNECT user name (or none) stand in for it; mosquitto too
 * refuses such a client. Registered before refuseUnverifiedClients, so it runs after it.
 */
export function refuseCertificatesWithoutCn(server: Server, warnings: PeerWarnings, count?: (reason: 'client-certificate-without-cn') => void): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (socket.destroyed || certificateCn(socket) !== undefined) return;
    count?.('client-certificate-without-cn');
    warnings.warn(socket.remoteAddress, { remotePort: socket.remotePort }, 'client certificate has no CN (use_identity_as_username)');
    socket.destroy();
  });
}

/**
 * mTLS: a client whose certificate is missing or does not verify against ca is cut before
 * any MQTT byte is read, with one warn line. Runs before the server's own connection
 * listener (for wss, the HTTP parser), which then sees a destroyed socket.
 */
export function refuseUnverifiedClients(server: Server, warnings: PeerWarnings, count?: (reason: 'no-client-certificate' | 'client-certificate') => void): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (socket.authorized) return;
    const none = Object.keys(socket.getPeerCertificate()).length === 0;
    count?.(none ? 'no-client-certificate' : 'client-certificate');
    warnings.warn(
      socket.remoteAddress,
      { remotePort: socket.remotePort, reason: String(socket.authorizationError ?? 'unverified') },
      none ? 'client sent no certificate' : 'client certificate refused',
    );
    socket.destroy();
  });
}
