/**
 * MQTT over TLS (mqtts): a node:tls server whose secure sockets go to the broker.
 *
 *   TCP accept ─▶ TLS handshake (cut after the connect timeout) ─▶ broker.handle(tlsSocket)
 *                   └─ fails: plain TCP, wrong/expired/missing/revoked client cert ─▶ one warn line
 *
 * The certificate files are watched; a renewed certificate is set with
 * setSecureContext and applies to new connections.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { TlsListenerConfig } from '../config/schema.js';
import type { Service } from '../core/lifecycle.js';
import { bindServer, boundAddress, gateHandshakes, logServerErrors, type StreamHandler } from './listen.js';
import { certificateCn, CLIENT_CERTIFICATE_LINES, crlProblemLog, loadTlsOptions, refuseCertificatesWithoutCn, refuseUnverifiedClients, TlsFileWatcher } from './tls-material.js';
import type { CertificateExpiry } from '../observability/certificate-expiry.js';
import { PeerWarnings } from './peer-warnings.js';

export interface TlsListenerOptions {
  /** Longest a TLS handshake may take (the broker's connect timeout). */
  handshakeTimeoutMs: number;
  /** Poll interval of the certificate file watcher. */
  watchIntervalMs?: number;
  /** Interval of the per-address limit on refusal log lines (default 10 s). */
  warnIntervalMs?: number;
  /** Called for each client refused before MQTT (failed handshake, client certificate); the gateway counts it. */
  onTlsRefused?: (reason: TlsRefusal) => void;
  /** Where the listener's certificates are reported for the expiry gauge; default its own (log lines only). */
  certificates?: CertificateExpiry;
}

/**
 * Alerts the client sent about our certificate (OpenSSL names them ERR_SSL_SSLV3_ALERT_* /
 * ERR_SSL_TLSV1_ALERT_* on the receiving side): the client refused the server, not the reverse.
 */
const CERT_ALERTS = ['unknown_ca', 'bad_certificate', 'certificate_unknown', 'certificate_expired', 'certificate_revoked', 'unsupported_certificate'];

/** Why a TLS client was refused, as counted (outpost_tls_refused_total{reason}). */
export type TlsRefusal =
  | 'timeout' | 'not-tls' | 'version' | 'no-client-certificate' | 'client-certificate' | 'client-certificate-revoked' | 'crl'
  | 'client-certificate-without-cn' | 'server-certificate' | 'client-closed' | 'other';

/** The log line of each refusal. */
export const TLS_REFUSAL_LINES: Record<TlsRefusal, string> = {
  timeout: 'tls handshake timed out',
  'not-tls': 'not tls (plain tcp on a tls port?)',
  version: 'tls version refused (below min_version)',
  ...CLIENT_CERTIFICATE_LINES,
  'client-certificate-without-cn': 'client certificate has no CN (use_identity_as_username)',
  'server-certificate': 'client refused our certificate (expired, or not signed by a ca it trusts?)',
  'client-closed': 'client closed during the tls handshake (does it trust our certificate?)',
  other: 'tls handshake failed',
};

/** What a failed handshake was, for the log line and the count. */
export function tlsFailure(err: NodeJS.ErrnoException): TlsRefusal {
  const code = err.code ?? '';
  const text = `${code} ${err.message}`.toLowerCase();
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1)_ALERT_(\w+)$/.exec(code)?.[1]?.toLowerCase();
  if (alert !== undefined && CERT_ALERTS.includes(alert)) return 'server-certificate';
  if (alert === 'protocol_version') return 'version';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'client-closed';
  if (text.includes('wrong version number') || text.includes('http request') || text.includes('packet length too long')) return 'not-tls';
  if (text.includes('unsupported protocol') || text.includes('version too low')) return 'version';
  if (text.includes('peer did not return a certificate') || text.includes('certificate required')) return 'no-client-certificate';
  if (alert === undefined && text.includes('certificate')) return 'client-certificate';
  return 'other';
}

/**
 * Logs failed handshakes on a TLS server (shared with wss), rate-limited per source address,
 * and counts each one. The address is taken at the TCP accept: a client that resets or sends
 * an alert has often closed the socket by the time tlsClientError runs, and its remoteAddress
 * is gone by then.
 */
export function logTlsClientErrors(server: tls.Server, warnings: PeerWarnings, count?: (reason: TlsRefusal) => void): void {
  const peers = new WeakMap<object, { remoteAddress: string | undefined; remotePort: number | undefined }>();
  server.prependListener('connection', (raw: net.Socket) => void peers.set(raw, { remoteAddress: raw.remoteAddress, remotePort: raw.remotePort }));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    // node keeps the accepted TCP socket a server-side TLSSocket wraps as _parent (not typed).
    const parent = (socket as unknown as { _parent?: object | null })._parent;
    const peer = (parent ? peers.get(parent) : undefined) ?? { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
    const reason = tlsFailure(err);
    count?.(reason);
    warnings.warn(peer.remoteAddress, { remotePort: peer.remotePort, reason: err.code ?? err.message }, TLS_REFUSAL_LINES[reason]);
    socket.destroy();
  });
}

/**
 * Everything a TLS server (mqtts, wss) does about clients refused before MQTT: failed
 * handshakes logged and counted, and the client certificate checks the listener asks for
 * (with an error line when its crl cannot be used: `log` and `where` name it).
 */
export function guardTlsClients(
  server: tls.Server,
  c: { use_identity_as_username: boolean; require_certificate: boolean; crl?: string | undefined },
  warnings: PeerWarnings,
  count?: (reason: TlsRefusal) => void,
  crl?: { log: Logger; where: string },
): void {
  logTlsClientErrors(server, warnings, count);
  if (c.use_identity_as_username) refuseCertificatesWithoutCn(server, warnings, count);
  if (c.require_certificate) refuseUnverifiedClients(server, warnings, count, crl === undefined ? undefined : crlProblemLog(crl.log, crl.where, c.crl));
}

export class TlsListener implements Service {
  readonly name: string;
  private server: tls.Server | undefined;
  private watcher: TlsFileWatcher | undefined;

  constructor(
    private readonly config: TlsListenerConfig,
    private readonly where: string,
    private readonly target: StreamHandler,
    private readonly log: Logger,
    private readonly options: TlsListenerOptions,
  ) {
    this.name = `mqtts listener ${config.host}:${config.port}`;
  }

  get address(): { host: string; port: number } {
    return boundAddress(this.server, this.config.host, this.config.port);
  }

  async start(): Promise<void> {
    const c = this.config;
    const secure = loadTlsOptions(c, this.where);
    let gated = false;
    const server = tls.createServer({ ...secure, handshakeTimeout: this.options.handshakeTimeoutMs }, (socket) => {
      if (socket.destroyed) return; // refused by refuseUnverifiedClients or refuseCertificatesWithoutCn
      socket.setNoDelay(true);
      const identity = c.use_identity_as_username ? certificateCn(socket) : undefined;
      this.target.handle(socket, {
        transport: 'tls',
        remoteAddress: socket.remoteAddress ?? '?',
        remotePort: socket.remotePort ?? 0,
        ...(identity !== undefined ? { identity } : {}),
        ...(gated ? { countedAtAccept: true } : {}),
      });
    });
    gated = gateHandshakes(server, this.target, 'tls');
    const warnings = new PeerWarnings(this.log, undefined, this.options.warnIntervalMs);
    guardTlsClients(server, c, warnings, this.options.onTlsRefused, { log: this.log, where: this.where });
    await bindServer(server, c.host, c.port, 'MQTTS');
    logServerErrors(server, this.log);
    this.server = server;
    this.watcher = new TlsFileWatcher(c, this.where, (o) => server.setSecureContext(o), this.log, {
      current: secure,
      ...(this.options.watchIntervalMs !== undefined ? { intervalMs: this.options.watchIntervalMs } : {}),
      ...(this.options.certificates !== undefined ? { certificates: this.options.certificates } : {}),
    });
    this.watcher.start();
    this.log.info({ host: this.address.host, port: this.address.port, mtls: c.require_certificate }, 'mqtts listener ready');
  }

  /** Re-reads the TLS files now (SIGHUP) and applies them to new connections if they changed. */
  reloadTls(): 'reloaded' | 'unchanged' | 'failed' {
    return this.watcher?.reload() ?? 'unchanged';
  }

  /** Stops accepting (the broker closes the connections; see TcpListener.stop). */
  async stop(): Promise<void> {
    this.watcher?.stop();
    this.watcher = undefined;
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.close();
  }
}
