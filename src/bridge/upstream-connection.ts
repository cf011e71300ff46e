/**
 * One connection attempt to the cloud broker: the socket (node:tls or node:net), the
 * connect timeout over TCP + TLS + CONNACK, framing through the shared Decoder, batched
 * writes, the keepalive watchdog, and exactly one `onClose` with the reason. The MQTT
 * conversation itself (CONNECT, acks, sessions) is upstream-client.ts's.
 *
 *   open() ─► dns+tcp ─► tls ─► onOpen (client writes CONNECT) ─► connack ─► markUp() ─► up
 *                 └──────── connect timer (connectTimeoutMs) ─────────┘      └─ watchdog
 *
 * Keepalive rule (K = the keepalive in force, the broker's Server Keep Alive if it sent one):
 * the watchdog ticks every K/4; it sends PINGREQ when nothing was sent, or nothing received,
 * for ¾K (so a packet goes out at least every K [MQTT-3.1.2-23]), and declares the link dead
 * when nothing at all arrived for 1.5 K. A half-open link is therefore closed between 1.5 K
 * and 1.75 K after the last byte from the broker: within 2 keepalive intervals. TCP
 * keepalive is on as well, for the kernel's own view of the path.
 *
 * Writes made in one tick go out as one socket write (one TLS record run) on the next
 * nextTick, which is what lets the forwarder drain tens of thousands of messages a second.
 * DNS (getaddrinfo on the libuv pool) and the TLS handshake are asynchronous: nothing here
 * blocks the event loop that serves local clients.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Clock, TimerHandle } from '../core/clock.js';
import { Decoder, type Packet } from '../mqtt/codec.js';
import type { UpstreamTls } from './upstream.js';
import { describeClose, describeCloseAfterTls, describeConnectTooLarge, describeKeepalive, describeSocketError, describeTimeout, type Failure, type Phase } from './upstream-failures.js';

export interface ConnectionTarget {
  host: string;
  port: number;
  /** TLS material when the URL is mqtts://, undefined for mqtt://. */
  tls: UpstreamTls | undefined;
}

export interface ConnectionSettings {
  connectTimeoutMs: number;
  /** Largest packet accepted from the broker. */
  maxPacketSize: number;
  protocolVersion: 4 | 5;
  /** `congested` is true above this many unsent bytes. */
  highWaterMark: number;
  /** Seconds; also the TCP keepalive idle time (30 s when 0). */
  keepalive: number;
}

export interface ConnectionHandlers {
  /** The transport is ready: write CONNECT now. */
  onOpen(): void;
  onPacket(packet: Packet): void;
  /** The socket buffer emptied after a write it could not take at once. */
  onDrain(): void;
  /** Exactly once. `failure` is undefined when the client closed it (stop). */
  onClose(failure: Failure | undefined): void;
}

const PINGREQ = Buffer.from([0xc0, 0x00]);

export class UpstreamConnection {
  phase: Phase = 'dns+tcp';
  private socket: Socket | undefined;
  private readonly decoder: Decoder;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private connectTimer: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;
  private lastRx = 0;
  private lastTx = 0;
  private pingAt = -1;
  private failure: Failure | undefined;
  private closing = false;
  private closed = false;
  private closeWaiters: (() => void)[] = [];
  /** The CONNECT body held back after its fixed header (a probe, see connect-shape.ts), and the CONNECT's size. */
  private heldBody: { rest: Buffer; bytes: number; timer: TimerHandle } | undefined;
  /** PINGREQs sent and PINGRESPs received here: the n-th PINGRESP answers every packet sent before the n-th PINGREQ. */
  private pingsSent = 0;
  pongs = 0;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly settings: ConnectionSettings,
    private readonly handlers: ConnectionHandlers,
    private readonly clock: Clock,
  ) {
    this.decoder = new Decoder(settings.maxPacketSize, {
      onPacket: (packet) => {
        if (packet.cmd === 'pingresp') this.pongs++;
        this.handlers.onPacket(packet);
      },
      onError: (err) => this.fail({ sentence: `malformed packet from ${target.host}:${target.port}: ${err.detail}`, key: `malformed:${target.host}` }),
    });
    this.decoder.setProtocolVersion(settings.protocolVersion);
  }

  /** Unsent bytes (ours and the socket's) are above the high-water mark. */
  get congested(): boolean {
    return this.socket === undefined || this.pendingBytes + this.socket.writableLength > this.settings.highWaterMark;
  }

  open(): void {
    const { host, port, tls } = this.target;
    const { connectTimeoutMs } = this.settings;
    this.connectTimer = this.clock.setTimeout(() => this.fail(describeTimeout(host, port, this.phase, connectTimeoutMs)), connectTimeoutMs);
    let socket: Socket;
    try {
      socket = tls !== undefined ? this.tlsSocket(tls) : netConnect({ host, port });
    } catch (err) {
      // createSecureContext throws at once on an unreadable key or certificate.
      const e = err as Error & { code?: string };
      this.fail({ sentence: `TLS settings for ${host} are unusable (${e.code ?? e.message}): check bridges[].ca, bridges[].cert and bridges[].key`, key: `tls-settings:${e.code}` });
      return;
    }
    if (tls !== undefined) {
      socket.once('connect', () => (this.phase = 'tls'));
      socket.once('secureConnect', () => this.opened());
    } else {
      socket.once('connect', () => this.opened());
    }
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, (this.settings.keepalive > 0 ? this.settings.keepalive : 30) * 1000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.handlers.onDrain());
    socket.on('error', (err: Error & { code?: string }) => {
      this.failure ??= describeSocketError(err, host, port, this.phase, tls?.servername);
    });
    socket.on('close', () => this.finish());
  }

  /** Queues bytes for the write at the end of this tick. */
  send(buf: Buffer): void {
    if (this.closed || this.socket === undefined) return;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  /**
   * Sends the CONNECT; with `holdBodyMs` > 0 its fixed header first and the rest that much later,
   * so that a close meanwhile shows the broker refused its length (see connect-shape.ts).
   */
  sendConnect(buf: Buffer, holdBodyMs: number): void {
    if (holdBodyMs <= 0) return this.send(buf);
    let end = 1;
    while (end < buf.length && (buf[end]! & 0x80) !== 0) end++; // the Remaining Length's last byte [MQTT-2.2.3]
    const timer = this.clock.setTimeout(() => {
      const held = this.heldBody;
      this.heldBody = undefined;
      if (held !== undefined) this.send(held.rest);
    }, holdBodyMs);
    this.heldBody = { rest: buf.subarray(end + 1), bytes: buf.length, timer };
    this.send(buf.subarray(0, end + 1));
  }

  /** Sends a PINGREQ; returns its number on this connection (see `pongs`). */
  ping(): number {
    this.pingsSent++;
    this.send(PINGREQ);
    return this.pingsSent;
  }

  /** CONNACK accepted: the connect timer stops and the keepalive watchdog starts. */
  markUp(keepaliveSeconds: number): void {
    this.phase = 'up';
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    if (keepaliveSeconds <= 0) return;
    const k = keepaliveSeconds * 1000;
    this.lastRx = this.lastTx = this.clock.now();
    this.watchdog = this.clock.setInterval(() => this.tick(k, keepaliveSeconds), Math.max(50, Math.floor(k / 4)));
  }

  /** Closes with this failure (the first reason given wins). */
  fail(failure: Failure): void {
    this.failure ??= failure;
    this.stopTimers();
    this.socket?.destroy();
    if (this.socket === undefined) this.finish();
  }

  /** Flushes what is queued, half-closes and waits for the close (destroys after `graceMs`). */
  async end(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.stopTimers();
    this.flush();
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    this.socket?.end();
    const timer = this.clock.setTimeout(() => this.socket?.destroy(), graceMs);
    await done;
    timer.cancel();
  }

  /** Closes at once without a failure (stop while not connected). */
  destroy(): void {
    this.closing = true;
    this.stopTimers();
    if (this.socket === undefined) this.finish();
    else this.socket.destroy();
  }

  private tlsSocket(tls: UpstreamTls): Socket {
    const { host, port } = this.target;
    // Verification is always on. SNI must be a host name, never an IP literal (RFC 6066 §3);
    // node checks the certificate against servername, else host (IP SANs for an IP).
    const servername = tls.servername ?? (isIP(host) === 0 ? host : undefined);
    return tlsConnect({ host, port, servername, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  }

  private opened(): void {
    this.phase = 'connack';
    this.handlers.onOpen();
  }

  private onData(chunk: Buffer): void {
    this.lastRx = this.clock.now();
    try {
      this.decoder.push(chunk);
    } catch (err) {
      // A handler threw: never let it escape into the socket's event emitter.
      this.fail({ sentence: `internal error handling a packet from ${this.target.host}: ${(err as Error).message}`, key: 'internal' });
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const socket = this.socket;
    if (this.pendingBytes === 0 || socket === undefined || socket.destroyed) {
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.lastTx = this.clock.now();
    socket.write(buf);
  }

  /** The wall clock stepped: silence and the ping outstanding are measured from the same moments as before. */
  clockStepped(deltaMs: number): void {
    this.lastRx += deltaMs;
    this.lastTx += deltaMs;
    if (this.pingAt >= 0) this.pingAt += deltaMs;
  }

  private tick(k: number, keepaliveSeconds: number): void {
    const now = this.clock.now();
    const silent = now - this.lastRx;
    if (silent >= 1.5 * k) {
      this.fail(describeKeepalive(this.target.host, this.target.port, silent, keepaliveSeconds));
      return;
    }
    const pingOutstanding = this.pingAt >= 0 && this.lastRx < this.pingAt;
    if (!pingOutstanding && (now - this.lastTx >= 0.75 * k || silent >= 0.75 * k)) {
      this.pingAt = now;
      this.ping();
    }
  }

  private stopTimers(): void {
    this.heldBody?.timer.cancel();
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    this.watchdog?.cancel();
    this.watchdog = undefined;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.pending = [];
    this.pendingBytes = 0;
    for (const w of this.closeWaiters.splice(0)) w();
    const { host, port } = this.target;
    let failure = this.failure ?? (this.phase === 'connack' && this.target.tls !== undefined ? describeCloseAfterTls(host, port) : describeClose(host, port, this.phase));
    // Closed (or reset) while the CONNECT body was held back: the broker refused the header's length.
    const reset = failure.key === describeSocketError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), host, port, this.phase).key;
    if (this.heldBody !== undefined && (reset || failure.key === describeClose(host, port, this.phase).key)) failure = describeConnectTooLarge(host, port, this.heldBody.bytes);
    this.handlers.onClose(this.closing ? undefined : failure);
  }
}
