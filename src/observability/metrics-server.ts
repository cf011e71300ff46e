/**
 * The operator's HTTP listener (default 127.0.0.1:9100): GET /metrics in the Prometheus
 * text format, GET /healthz 200 or 503 with a JSON body naming what is not healthy,
 * GET /status.json (status.ts) and GET / (the status page, status-page.html).
 * It only reads: rendering and health are functions handed in (gateway-metrics.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import type { Health } from './gateway-metrics.js';

export interface MetricsServerDeps {
  log: Logger;
  render(): string;
  health(): Health;
  /** The /status.json document; without it /status.json and / are 404. */
  status?(): unknown;
  /** The status page HTML. */
  page?(): string;
}

export class MetricsServer {
  readonly name = 'metrics';
  private server: Server | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly deps: MetricsServerDeps,
  ) {}

  /** The bound address (port 0 resolves to the real port); undefined before start. */
  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const what = `metrics listener ${this.host}:${this.port}`;
        const hint = err.code === 'EADDRINUSE' ? 'is already in use; set metrics.port to a free port or metrics.enabled: false'
          : err.code === 'EACCES' ? 'is not allowed for this user; use a port above 1023'
          : `cannot be opened (${err.message}); check metrics.host and metrics.port`;
        reject(new OutpostError('METRICS_LISTEN_FAILED', `${what} ${hint}`, { cause: err }));
      });
      server.listen(this.port, this.host, () => resolve());
    });
    server.on('error', (err) => this.deps.log.warn({ err }, 'metrics listener error'));
    this.server = server;
    this.deps.log.info({ address: this.address }, 'metrics listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    try {
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.deps.render());
      } else if (path === '/healthz') {
        const h = this.deps.health();
        res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h)}\n`);
      } else if (path === '/status.json' && this.deps.status !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(this.deps.status())}\n`);
      } else if ((path === '/' || path === '/index.html') && this.deps.page !== undefined) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(this.deps.page());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /, /status.json, /metrics or /healthz\n');
      }
    } catch (err) {
      this.deps.log.error({ err, path }, 'metrics request failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
    }
  }
}
