/**
 * Plain TCP transport: accepts sockets and hands them to the broker.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { Service } from '../core/lifecycle.js';
import { bindServer, boundAddress, logServerErrors, type StreamHandler } from './listen.js';

export type { StreamHandler } from './listen.js';

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
    return boundAddress(this.server, this.host, this.port);
  }

  async start(): Promise<void> {
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
      this.target.handle(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '?', remotePort: socket.remotePort ?? 0 });
    });
    await bindServer(server, this.host, this.port, 'MQTT');
    logServerErrors(server, this.log);
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
