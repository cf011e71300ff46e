/**
 * Binding a listening server, shared by every listener kind: a failed bind becomes one
 * OutpostError sentence naming the listener and what to do (the CLI's one fatal line).
 */
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import type { PeerInfo } from './connection.js';

/** What a listener hands its connections to (the broker). */
export interface StreamHandler {
  handle(stream: Duplex, peer: PeerInfo): void;
  /** Asked when a TCP connection arrives, before a TLS or WebSocket handshake is spent on it; it then counts against the limits. */
  admitHandshake?(peer: Pick<PeerInfo, 'transport' | 'remoteAddress' | 'remotePort'>): boolean;
  /** The TCP socket of a connection admitHandshake let in closed (whether or not it was handed over). */
  handshakeClosed?(peer: Pick<PeerInfo, 'transport' | 'remoteAddress' | 'remotePort'>): void;
}

/**
 * Runs `target.admitHandshake` on each accepted TCP socket before the server's own handler
 * (TLS, HTTP) sees it; a refused socket is destroyed at once, an admitted one counts
 * against the limits until it closes (`target.handshakeClosed`). Returns whether a gate is
 * in place, so the listener can tell the broker the connection was counted in already.
 */
export function gateHandshakes(server: Server, target: StreamHandler, transport: string): boolean {
  const admit = target.admitHandshake;
  if (admit === undefined) return false;
  server.prependListener('connection', (socket: Socket) => {
    const peer = { transport, remoteAddress: socket.remoteAddress ?? '?', remotePort: socket.remotePort ?? 0 };
    if (!admit.call(target, peer)) {
      socket.destroy();
      return;
    }
    socket.once('close', () => target.handshakeClosed?.(peer));
  });
  return true;
}

export async function bindServer(server: Server, host: string, port: number, label: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const what = err.code === 'EADDRINUSE' ? 'is already in use; stop the other program or pick another port in listeners'
        : err.code === 'EACCES' ? 'needs privileges; use a port above 1023'
        : err.code === 'EADDRNOTAVAIL' ? 'is not an address of this machine (EADDRNOTAVAIL); fix its host in listeners (0.0.0.0 binds every IPv4 interface)'
        : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? `has a host name that does not resolve (${err.code}); fix its host in listeners`
        : `cannot be bound (${err.code ?? err.message})`;
      reject(new OutpostError('BROKER_LISTEN_FAILED', `${label} listener ${host}:${port} ${what}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host, port, backlog: 1024 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** The bound address of a server; the configured one before it listens. */
export function boundAddress(server: Server | undefined, host: string, port: number): { host: string; port: number } {
  const a = server?.address();
  if (a !== null && a !== undefined && typeof a === 'object') return { host: a.address, port: a.port };
  return { host, port };
}

/** Errors after listening are logged, never thrown (the bind error was reported once already). */
export function logServerErrors(server: Server, log: Logger): void {
  server.on('error', (err) => log.error({ err }, 'listener error'));
}
