/**
 * Plain TCP transport: accepts sockets and hands them to the broker. The only broker
 * file that imports node:net.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import type { Service } from '../core/lifecycle.js';

export interface StreamHandler {
  handle(stream: net.Socket, peer: { transport: string; remoteAddress: string; remotePort: number }): void;
}

export class TcpListener implements Service {
  readonly name: string;
  private server: net.Server | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly target: StreamHandler,
    private readonly log: Logger,
  ) {
    this.name = `mqtt listener ${host}:${port}`;
  }

  /** The bound address; the real port when 0 was asked for. */
  get address(): { host: string; port: number } {
    const a = this.server?.address();
    if (a !== null && typeof a === 'object') return { host: a.address, port: a.port };
    return { host: this.host, port: this.port };
  }

  async start(): Promise<void> {
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
      this.target.handle(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '?', remotePort: socket.remotePort ?? 0 });
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const what = err.code === 'EADDRINUSE' ? 'is already in use; stop the other program or pick another port in listeners'
          : err.code === 'EACCES' ? 'needs privileges; use a port above 1023'
          : `cannot be bound (${err.code ?? err.message})`;
        reject(new OutpostError('BROKER_LISTEN_FAILED', `MQTT listener ${this.host}:${this.port} ${what}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen({ host: this.host, port: this.port, backlog: 1024 }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // Only after listening: a failed listen is reported once, by the OutpostError above
    // (the CLI's one fatal line), not also as an error line here.
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    this.server = server;
    this.log.info({ host: this.address.host, port: this.address.port }, 'mqtt listener ready');
  }

  /**
   * Stops accepting; existing connections are closed by the broker, which stops after
   * the listeners and says goodbye to v5 clients first (DISCONNECT 0x8B). server.close's
   * callback waits until every connection has ended, so awaiting it here would deadlock
   * the shutdown while clients are connected.
   */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.close(); // the listening socket is closed at once
  }
}
