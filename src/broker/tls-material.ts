/**
 * TLS material of a listener: the files named in config, read into the options of
 * tls.createServer / setSecureContext, and watched so a renewed certificate (or a new CRL)
 * applies to new connections without a restart (open connections keep the context they
 * shook hands with).
 *
 * Renewal tools write cert and key one after the other, or replace the files by rename;
 * fs.watchFile polls the path, so both are seen. A reload that fails (a half-written file,
 * a key that does not match the certificate yet) keeps the previous context and logs a
 * warning; the next change tries again. Each certificate applied is reported to the
 * certificate expiry gauge (observability/certificate-expiry.ts), which also logs one that
 * expires soon, has expired or is not valid yet.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { PeerWarnings } from './peer-warnings.js';
import type { TlsListenerConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import { PEM_FIX, readBoundedFile, readFailure } from '../config/read-file.js';
import { CertificateExpiry } from '../observability/certificate-expiry.js';
import { LogRateLimiter } from '../observability/rate-limit.js';

export interface TlsServerOptions extends SecureContextOptions {
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** Reads the files; throws one sentence naming the key and file when one cannot be read or used. */
export function loadTlsOptions(l: TlsListenerConfig, where: string): TlsServerOptions {
  const read = (key: 'cert' | 'key' | 'ca' | 'crl', file: string): Buffer => {
    try {
      // Regular files of a sane size only: a FIFO renewal tools left at the path hung the reload.
      return readBoundedFile(file);
    } catch (err) {
      throw new OutpostError('CONFIG_INVALID', `${where}.${key}: ${readFailure(file, err, PEM_FIX)}`, { cause: err });
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
  if (l.crl !== undefined) options.crl = crlBlocks(read('crl', l.crl), l.crl, `${where}.crl`);
  try {
    createSecureContext(options); // a key that does not match, or a file that is not PEM, fails here
  } catch (err) {
    throw new OutpostError('CONFIG_INVALID', `${where}: ${l.cert} / ${l.key} cannot be used (${(err as Error).message}); check the certificate, key and ca files`, { cause: err });
  }
  return options;
}

/**
 * The CRLs of a PEM file, one string each: node reads only the first CRL of a buffer (a
 * file may hold one per CA). They are tried on their own so that a bad file is named under
 * its key, not as "the certificate cannot be used".
 */
function crlBlocks(pem: Buffer, file: string, setting: string): string[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g) ?? [];
  const remedy = 'give the PEM CRL published by the CA of ca (openssl ca -gencrl)';
  if (blocks.length === 0) throw new OutpostError('CONFIG_INVALID', `${setting}: ${file} holds no PEM CRL (-----BEGIN X509 CRL-----); ${remedy}`);
  try {
    createSecureContext({ crl: blocks });
  } catch (err) {
    throw new OutpostError('CONFIG_INVALID', `${setting}: ${file} cannot be used as a CRL (${(err as Error).message}); ${remedy}`, { cause: err });
  }
  return blocks;
}

export interface TlsFileWatcherOptions {
  /** Poll interval of the files (default 2 s). */
  intervalMs?: number;
  /** The options the listener started with (applied already). */
  current?: TlsServerOptions;
  /** Where the certificates applied are reported; default one of the watcher's own (for its log lines only). */
  certificates?: CertificateExpiry;
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
  /** cert, key, ca and crl as last applied (empty when none). */
  private applied: Buffer[] | undefined;
  private readonly current: TlsServerOptions | undefined;
  private readonly intervalMs: number;
  private readonly certificates: CertificateExpiry;
  /** The listener's labels on the expiry gauge, as on outpost_listener_connections. */
  private readonly owner: Readonly<Record<string, string>>;

  constructor(
    private readonly listener: TlsListenerConfig,
    private readonly where: string,
    private readonly apply: (options: TlsServerOptions) => void,
    private readonly log: Logger,
    options: TlsFileWatcherOptions = {},
  ) {
    const l = listener;
    this.files = [l.cert, l.key, ...(l.ca !== undefined ? [l.ca] : []), ...(l.crl !== undefined ? [l.crl] : [])];
    this.current = options.current;
    if (this.current !== undefined) this.applied = contents(this.current);
    this.intervalMs = options.intervalMs ?? 2000;
    this.certificates = options.certificates ?? new CertificateExpiry();
    this.owner = { type: l.type, address: `${l.host}:${l.port}` };
  }

  start(): void {
    if (this.watching) return;
    this.watching = true;
    if (this.current !== undefined) this.report(this.current);
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
    this.log.info({ cert: this.listener.cert, ...(this.listener.crl !== undefined ? { crl: this.listener.crl } : {}) }, 'tls certificate reloaded');
    this.report(options);
    return 'reloaded';
  }

  /** The certificate and CA file applied, to the expiry gauge (which logs one that expires soon or has expired). */
  private report(o: TlsServerOptions): void {
    const l = this.listener;
    if (Buffer.isBuffer(o.cert)) this.certificates.update({ use: 'listener', owner: this.owner, file: l.cert, setting: `${this.where}.cert` }, o.cert, this.log);
    if (Buffer.isBuffer(o.ca) && l.ca !== undefined) this.certificates.update({ use: 'listener-ca', owner: this.owner, file: l.ca, setting: `${this.where}.ca` }, o.ca, this.log);
  }

  private readonly changed = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return;
    this.reload();
  };
}

function contents(o: TlsServerOptions): Buffer[] {
  const crl = Array.isArray(o.crl) ? Buffer.from(o.crl.join('\n')) : o.crl;
  return [o.cert, o.key, o.ca, crl].map((v) => (Buffer.isBuffer(v) ? v : Buffer.alloc(0)));
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

/** Why a client certificate was refused, as counted (a subset of tls-listener.ts TlsRefusal). */
export type ClientCertificateRefusal = 'no-client-certificate' | 'client-certificate' | 'client-certificate-revoked' | 'crl';

export const CLIENT_CERTIFICATE_LINES: Record<ClientCertificateRefusal, string> = {
  'no-client-certificate': 'client sent no certificate',
  'client-certificate': 'client certificate refused',
  'client-certificate-revoked': 'client certificate revoked (crl)',
  crl: 'client certificate not checked: the crl cannot be used',
};

/** What node's authorizationError of a presented certificate means. */
export function clientCertificateRefusal(authorizationError: string): ClientCertificateRefusal {
  if (authorizationError === 'CERT_REVOKED') return 'client-certificate-revoked';
  // UNABLE_TO_GET_CRL (no CRL of that CA in the file), CRL_HAS_EXPIRED, CRL_SIGNATURE_FAILURE, ...: ours to fix, not the client's.
  if (authorizationError.includes('CRL')) return 'crl';
  return 'client-certificate';
}

/**
 * The error line of a CRL that cannot be used (past its next update, or of another CA than
 * the client's): every client certificate of that CA is refused until it is replaced. At most
 * one line a minute per listener; each client refused also gets its warn line.
 */
export function crlProblemLog(log: Logger, where: string, file: string | undefined): (code: string) => void {
  const limiter = new LogRateLimiter(systemClock, 60_000, 1);
  return (code) =>
    limiter.write(log, 'error', 'crl', { crl: file, setting: `${where}.crl`, reason: code },
      'client certificates cannot be checked against the crl (past its next update, or none of their ca in it): they are refused; put a current crl of each ca in the file and reload (systemctl reload outpost)');
}

/**
 * mTLS: a client whose certificate is missing, does not verify against ca or is revoked by
 * the crl is cut before any MQTT byte is read, with one warn line. Runs before the server's
 * own connection listener (for wss, the HTTP parser), which then sees a destroyed socket.
 */
export function refuseUnverifiedClients(server: Server, warnings: PeerWarnings, count?: (reason: ClientCertificateRefusal) => void, crlProblem?: (code: string) => void): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (socket.authorized) return;
    const none = Object.keys(socket.getPeerCertificate()).length === 0;
    const code = String(socket.authorizationError ?? 'unverified');
    const reason = none ? 'no-client-certificate' : clientCertificateRefusal(code);
    count?.(reason);
    if (reason === 'crl') crlProblem?.(code);
    warnings.warn(socket.remoteAddress, { remotePort: socket.remotePort, reason: code }, CLIENT_CERTIFICATE_LINES[reason]);
    socket.destroy();
  });
}
