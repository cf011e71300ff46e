/**
 * MQTT over WebSocket (ws) and over WebSocket over TLS (wss), as browsers and dashboards
 * speak it (MQTT 5 §6: binary frames, subprotocol "mqtt"). The only file importing `ws`.
 *
 *   HTTP(S) server ─ upgrade on `path` ─▶ WebSocket ─ createWebSocketStream ─▶ broker.handle(duplex)
 *
 * `ws` reassembles fragmented and TCP-split frames; a message larger than maxPayload
 * (wsMessageLimit: the broker's max_packet_size, at least 64 KiB) closes that connection with 1009. A handshake that stalls is
 * cut after the connect timeout (TLS handshakeTimeout, HTTP headersTimeout/requestTimeout,
 * checked often enough to hold to it).
 */
import http from 'node:http';
import https from 'node:https';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocketServer, WebSocket } from 'ws';
import type { ListenerConfig } from '../config/schema.js';
import type { Service } from '../core/lifecycle.js';
import { bindServer, boundAddress, gateHandshakes, logServerErrors, type StreamHandler } from './listen.js';
import { certificateCn, loadTlsOptions, TlsFileWatcher } from './tls-material.js';
import { guardTlsClients, type TlsRefusal } from './tls-listener.js';
import { PeerWarnings } from './peer-warnings.js';
import { originAllowed, originSet } from '../core/web-origin.js';
import type { CertificateExpiry } from '../observability/certificate-expiry.js';

/** Writes a raw HTTP answer and closes the socket once it is sent (errors of a peer already gone are dropped). */
function answerAndClose(socket: Duplex, text: string): void {
  socket.on('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(text);
}

/** The path of a request URL, without its query. */
function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q === -1 ? u : u.slice(0, q);
}

type WsConfig = Extract<ListenerConfig, { type: 'ws' | 'wss' }>;

export interface WsListenerOptions {
  /** Longest the TLS handshake or the HTTP upgrade request may take. */
  handshakeTimeoutMs: number;
  /** Largest WebSocket message accepted (bytes). */
  maxPayload: number;
  watchIntervalMs?: number;
  /** Interval of the per-address limit on refusal log lines (default 10 s). */
  warnIntervalMs?: number;
  /** wss: called for each client refused in or right after the TLS handshake (the gateway counts it). */
  onTlsRefused?: (reason: TlsRefusal) => void;
  /** Called for each upgrade refused for its Origin (the gateway counts it in the broker metrics). */
  onOriginRefused?: () => void;
  /** Called for each client cut for flooding pings (the gateway counts it as a protocol violation). */
  onPingFlood?: () => void;
  /** wss: where the listener's certificates are reported for the expiry gauge; default its own (log lines only). */
  certificates?: CertificateExpiry;
}

/**
 * The largest WebSocket message for a broker max_packet_size. A message may carry several
 * MQTT packets [MQTT-6.0.0-2] (a TCP-to-WebSocket proxy frames whatever one read returned), so
 * it is not held to one packet's limit: at least 64 KiB, what one socket read holds anyway.
 * The broker still refuses any single packet above max_packet_size.
 */
export function wsMessageLimit(maxPacketSize: number): number {
  return Math.max(maxPacketSize, 64 * 1024);
}

/**
 * Pongs to a client not yet written out before it is cut: what `ws` allows (its
 * maxPendingAutoPongs default), so a burst of more pings than this in one read counts too,
 * as in `ws`. Pings are answered here rather than by `ws` (autoPong: false), whose own cut is
 * a silent terminate(): no event tells it from any other close.
 */
export const MAX_PENDING_PONGS = 60;

/** Subprotocols accepted: "mqtt" (3.1.1 and 5) and "mqttv3.1" (older clients). */
const PROTOCOLS = ['mqtt', 'mqttv3.1'];

export class WsListener implements Service {
  readonly name: string;
  private server: http.Server | https.Server | undefined;
  private wss: WebSocketServer | undefined;
  private watcher: TlsFileWatcher | undefined;
  private readonly warnings: PeerWarnings;
  private gated = false;
  private createStream: typeof import('ws').createWebSocketStream | undefined;

  constructor(
    private readonly config: WsConfig,
    private readonly where: string,
    private readonly target: StreamHandler,
    private readonly log: Logger,
    private readonly options: WsListenerOptions,
  ) {
    this.name = `${config.type} listener ${config.host}:${config.port}${config.path}`;
    this.warnings = new PeerWarnings(log, undefined, options.warnIntervalMs);
  }

  get address(): { host: string; port: number } {
    return boundAddress(this.server, this.config.host, this.config.port);
  }

  async start(): Promise<void> {
    const c = this.config;
    const refuse = (_req: IncomingMessage, res: http.ServerResponse) => {
      // A 426 names the protocol to upgrade to (RFC 9110 §15.5.22: MUST send Upgrade).
      res.writeHead(426, { upgrade: 'websocket', connection: 'close', 'content-type': 'text/plain' }).end(`MQTT over WebSocket: upgrade on ${c.path}\n`);
    };
    // Node checks headersTimeout/requestTimeout only every connectionsCheckingInterval (30 s
    // by default): a stalled upgrade request would outlive the connect timeout by up to that.
    const checking = { connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(this.options.handshakeTimeoutMs / 2))) };
    let server: http.Server | https.Server;
    if (c.type === 'wss') {
      const secure = loadTlsOptions(c, this.where);
      const tlsServer = https.createServer({ ...secure, ...checking, handshakeTimeout: this.options.handshakeTimeoutMs }, refuse);
      guardTlsClients(tlsServer, c, this.warnings, this.options.onTlsRefused, { log: this.log, where: this.where });
      this.watcher = new TlsFileWatcher(c, this.where, (o) => tlsServer.setSecureContext(o), this.log, {
        current: secure,
        ...(this.options.watchIntervalMs !== undefined ? { intervalMs: this.options.watchIntervalMs } : {}),
        ...(this.options.certificates !== undefined ? { certificates: this.options.certificates } : {}),
      });
      server = tlsServer;
    } else {
      server = http.createServer(checking, refuse);
    }
    this.gated = gateHandshakes(server, this.target, c.type);
    server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex & { remoteAddress?: string; remotePort?: number }) => this.badRequest(err, socket));
    server.headersTimeout = this.options.handshakeTimeoutMs;
    server.requestTimeout = this.options.handshakeTimeoutMs;

    // Loaded here, not at the top: a gateway without ws/wss listeners never pays for `ws` (a few MiB resident).
    const { WebSocketServer, createWebSocketStream } = await import('ws');
    // Cross-site WebSocket hijacking: a page from any site, open in a browser on the site, could
    // otherwise use this broker (browsers send Origin and apply no same-origin rule to WebSockets).
    const origins = originSet(c.allowed_origins);
    this.createStream = createWebSocketStream;
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      autoPong: false, // see answerPings
      handleProtocols: (offered) => PROTOCOLS.find((p) => offered.has(p)) ?? false,
      verifyClient: (info: { origin?: string; req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
        if (originAllowed(info.origin, origins)) return done(true);
        this.refuseOrigin(info.req, info.origin!);
        done(false, 403, 'Origin not allowed');
      },
    });
    // The path is checked here rather than by `ws` (its `path` option answers 400 and logs
    // nothing): a client set up for another path, mosquitto's `/` say, gets 404 and a log line.
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (pathOf(req.url) !== c.path) return this.refusePath(req, socket);
      wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    });
    wss.on('error', (err) => this.log.error({ err }, 'websocket server error'));
    await bindServer(server, c.host, c.port, c.type.toUpperCase());
    logServerErrors(server, this.log);
    this.server = server;
    this.wss = wss;
    this.watcher?.start();
    this.log.info({ host: this.address.host, port: this.address.port, path: c.path }, `${c.type} listener ready`);
  }

  /**
   * A request node's HTTP parser refused or that timed out: answered as node would (408, 431,
   * 400), and logged rate-limited; node answers silently, so an mqtts:// or mqtt:// client
   * pointed at this port left no trace. What the bytes look like goes in the line.
   */
  private badRequest(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex & { remoteAddress?: string; remotePort?: number }): void {
    // https also passes its TLS failures here (tlsClientError, logged by logTlsClientErrors): not HTTP's to answer.
    const http = err.code?.startsWith('HPE_') === true || err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (!http || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    answerAndClose(socket, `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    const first = err.rawPacket?.[0];
    const msg = status === 408 ? 'http upgrade request timed out'
      : first === 0x16 ? 'tls on a plain websocket port (wss:// or mqtts:// meant?)'
      : first === 0x10 ? `mqtt without websocket on a websocket port (${this.config.type === 'wss' ? 'mqtts' : 'mqtt'}:// meant?)`
      : 'bad http request';
    this.warnings.warn(socket.remoteAddress, { remotePort: socket.remotePort, reason: err.code ?? err.message }, msg);
  }

  private refusePath(req: IncomingMessage, socket: Duplex): void {
    const body = `MQTT over WebSocket is on ${this.config.path}\n`;
    answerAndClose(socket, `HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const fields = { remotePort: req.socket.remotePort, path: (req.url ?? '').slice(0, 200), setting: `${this.where}.path` };
    this.warnings.warn(req.socket.remoteAddress, fields, `websocket upgrade on another path than ${this.config.path} refused (HTTP 404)`);
  }

  private refuseOrigin(req: IncomingMessage, origin: string): void {
    this.options.onOriginRefused?.();
    // The key to add it to, so the operator who meant that page to connect knows what to do.
    const fields = { remotePort: req.socket.remotePort, origin: origin.slice(0, 200), setting: `${this.where}.allowed_origins` };
    this.warnings.warn(req.socket.remoteAddress, fields, 'websocket from a web origin not in allowed_origins refused (HTTP 403)');
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const socket = req.socket;
    const peer = { remoteAddress: socket.remoteAddress ?? '?', remotePort: socket.remotePort ?? 0 };
    if (ws.protocol === '') {
      // MQTT over WebSocket requires the subprotocol [MQTT-6.0.0-3]; a client that offers none is not an MQTT client.
      this.warnings.warn(peer.remoteAddress, { remotePort: peer.remotePort }, 'websocket without the mqtt subprotocol refused');
      ws.close(1002, 'subprotocol mqtt required');
      return;
    }
    this.answerPings(ws, peer);
    ws.on('error', (err: Error & { code?: string }) => {
      this.warnings.warn(peer.remoteAddress, { remotePort: peer.remotePort, reason: err.code ?? err.message }, err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'websocket message too large' : 'websocket error');
    });
    const stream = this.createStream!(ws);
    // The WebSocket has closed once its stream ends: destroy the stream as a TCP socket closes
    // after its end. Ending it (what the broker does on 'end') waits for the socket's 'finish',
    // which never comes when the peer reset with writes still queued (a client gone while
    // pongs or messages to it were unsent): no 'close', so no Will and the connection held
    // until its keepalive, forever with keepalive 0.
    stream.once('end', () => stream.destroy());
    // MQTT travels in binary frames only; any other data frame closes the connection
    // [MQTT-6.0.0-1]. Ahead of the stream's own listener, so the frame never reaches the broker.
    ws.prependListener('message', (_data: unknown, isBinary: boolean) => {
      if (isBinary) return;
      this.warnings.warn(peer.remoteAddress, { remotePort: peer.remotePort }, 'websocket text frame refused (MQTT needs binary frames)');
      // The close frame first: destroying the stream terminates the socket, and a frame
      // written after that never leaves (the client would see 1006, not 1003).
      ws.close(1003, 'binary frames only');
      stream.destroy();
    });
    const tlsSocket = 'getPeerCertificate' in socket ? (socket as import('node:tls').TLSSocket) : undefined;
    const identity = this.config.type === 'wss' && this.config.use_identity_as_username && tlsSocket ? certificateCn(tlsSocket) : undefined;
    this.target.handle(stream, { transport: this.config.type, ...peer, ...(identity !== undefined ? { identity } : {}), ...(this.gated ? { countedAtAccept: true } : {}) });
  }

  /**
   * Answers each ping with a pong [RFC 6455 §5.5.2], as `ws` would. A client that keeps
   * pinging without reading the pongs (MAX_PENDING_PONGS of them unsent) would grow the
   * socket's write buffer without bound: it is cut with one warn line and counted.
   */
  private answerPings(ws: WebSocket, peer: { remoteAddress: string; remotePort: number }): void {
    let pending = 0;
    const sent = () => void pending--;
    ws.on('ping', (data: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      if (pending >= MAX_PENDING_PONGS) {
        this.options.onPingFlood?.();
        this.warnings.warn(peer.remoteAddress, { remotePort: peer.remotePort, unsentPongs: pending }, 'websocket cut: it floods pings without reading the pongs');
        ws.terminate();
        return;
      }
      pending++;
      ws.pong(data, false, sent);
    });
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
    this.wss?.close();
    this.wss = undefined;
    server.close();
  }
}
