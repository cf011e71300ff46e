/**
 * One network connection: bytes in → Decoder → dispatcher → handlers; results back to
 * the wire. It is the SessionLink of the session it carries. Handlers return a Violation
 * instead of closing anything themselves; `dispatch` is the one place that turns a
 * violation into a DISCONNECT reason code (v5) or a plain close (3.1.1).
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WillSpec } from '../core/persistence.js';
import type { Message, QoS } from '../core/message.js';
import type { TimerHandle } from '../core/clock.js';
import { ALLOW_ALL, type Grants } from '../auth/acl.js';
import { Decoder, encode, encodeAck, publishPacketIdOffset, setDupFlag, type DecodeError, type Packet, type ProtocolVersion } from '../mqtt/codec.js';
import { encodeV5Publish, encodingShared, sharedEncoding } from './publish-encoding.js';
import type { BrokerContext } from './context.js';
import type { Session, SessionLink } from './session.js';
import type { DropReason } from './metrics.js';
import { V5_REASON, type Outcome } from './reason-codes.js';
import { handlePacket } from './handlers/index.js';

export interface Violation {
  outcome: Outcome;
  detail: string;
}

export interface PeerInfo {
  transport: string;
  remoteAddress: string;
  remotePort: number;
  /** The client certificate's CN, when the listener uses it as the user name (mTLS). */
  identity?: string;
  /** The listener admits only authenticated clients (bound beyond loopback, auth.allow_anonymous false). */
  refuseAnonymous?: boolean;
  /** The listener it came in on, `<type> <host>:<port>` (`mqtts 127.0.0.1:8883`), for the per-listener metrics. */
  listener?: string;
  /** Counted against the connection limits at its TCP accept, before the TLS/WebSocket handshake, until that socket closes (StreamHandler.admitHandshake). */
  countedAtAccept?: boolean;
}

const MAX_HELD_PACKETS = 1000;
/**
 * Queued bytes that are written at once rather than at the end of the turn: about what one
 * socket read (64 KiB) of a busy publisher queues for a subscriber, so that under load the
 * writes keep pace with the reads instead of piling up until the poll phase ends.
 */
const FLUSH_NOW_BYTES = 64 * 1024;


export class Connection implements SessionLink {
  /** authenticating: CONNECT arrived, the password is being checked; nothing else is processed yet. */
  state: 'awaiting-connect' | 'authenticating' | 'connected' | 'closed' = 'awaiting-connect';
  version: ProtocolVersion = 4;
  clientId = '';
  /** The verified user name (password file or certificate identity); undefined for anonymous clients. */
  user: string | undefined;
  /** What the ACL lets this client read and write (everything without an ACL file). */
  grants: Grants = ALLOW_ALL;
  session: Session | undefined;
  /** Will from CONNECT; delay and expiry in seconds (MQTT 5 §3.1.3.2). */
  will: WillSpec | undefined;
  keepalive = 0;
  /** Set when the client sent DISCONNECT (0x00): the Will is discarded [MQTT-3.14.4-3]. */
  graceful = false;
  /** Closed by the server's shutdown while the client was connected (it sent no DISCONNECT). */
  shutdown = false;
  // Limits the client announced in CONNECT (MQTT 5 §3.1.2.11).
  clientReceiveMaximum = 65535;
  clientMaxPacketSize = Number.POSITIVE_INFINITY;
  clientTopicAliasMax = 0;
  requestProblemInfo = true;
  outAliases: Map<string, number> | undefined;
  inAliases: Map<number, string> | undefined;
  /** QoS 1 packet ids whose PUBACK waits for a durable commit. */
  qos1Pending: Set<number> | undefined;
  /** PUBACK/PUBREC in the order the PUBLISHes arrived [MQTT-4.6.0-2/-3]. */
  acks: { cmd: 'puback' | 'pubrec'; id: number; code: number | undefined }[] | undefined;

  private readonly decoder: Decoder;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private drainWaiting = false;
  /** A packet arrived since the last sweep (cheaper than touching a timer per packet). */
  private seen = false;
  /** Sweep time at or after the last packet; keepalive is measured from here. */
  private lastSeen: number;
  private logger: Logger | undefined;
  private firstByte = true;
  /** Packets that arrived behind CONNECT while the password was checked (processed after CONNACK). */
  private held: { packet: Packet; raw: Buffer }[] | undefined;
  private heldBytes = 0;
  /** The delayed refusal of a wrong password (cancelled when the client leaves first). */
  authTimer: TimerHandle | undefined;

  constructor(
    readonly ctx: BrokerContext,
    readonly socket: Duplex,
    readonly peer: PeerInfo,
  ) {
    this.decoder = new Decoder(ctx.options.maxPacketSize, this);
    this.lastSeen = ctx.clock.now();
  }

  /**
   * The per-client child logger. It is kept only while debug logging is on: at info
   * level a client logs a few lines in its life, and 5,000 idle clients should not
   * each hold a logger.
   */
  get log(): Logger {
    if (this.logger !== undefined) return this.logger;
    const child = this.ctx.log.child(this.clientId ? { clientId: this.clientId, peer: this.peerName } : { peer: this.peerName });
    if (this.ctx.log.isLevelEnabled('debug')) this.logger = child;
    return child;
  }

  get peerName(): string {
    return `${this.peer.remoteAddress}:${this.peer.remotePort}`;
  }

  /** Starts reading. Called once by the broker after construction. */
  open(): void {
    const s = this.socket;
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', ignoreSocketError);
    s.on('close', (hadError: boolean) => this.onClosed(hadError));
    s.on('end', endWritable);
  }

  /** The wall clock stepped: the keepalive is measured from the same moment as before. */
  clockStepped(deltaMs: number): void {
    this.lastSeen += deltaMs;
  }

  /**
   * Called by the broker's sweep timer (one timer for all connections instead of one
   * per connection): enforces the connect timeout and the keepalive. `lastSeen` only
   * moves forward at sweeps, so a client is never cut early, at most one sweep late.
   */
  sweep(now: number): void {
    if (this.state === 'awaiting-connect') {
      if (now - this.lastSeen >= this.ctx.options.connectTimeoutMs) {
        this.ctx.metrics.violation('connect-timeout');
        this.ctx.warn(this, 'connect-timeout', 'no CONNECT within the connect timeout');
        this.destroy();
      }
      return;
    }
    if (this.state !== 'connected') return;
    if (this.seen) {
      this.seen = false;
      this.lastSeen = now;
      return;
    }
    // One and a half times the Keep Alive without a packet → close [MQTT-3.1.2-24].
    if (this.keepalive > 0 && now - this.lastSeen >= this.keepalive * 1500) {
      this.violate({ outcome: 'keep-alive-timeout', detail: `no packet within ${this.keepalive * 1.5} s` });
    }
  }

  // ---- inbound ------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.ctx.metrics.bytesIn += chunk.length;
    if (this.state === 'closed') return; // closing: nothing more is read or buffered
    if (this.firstByte && chunk.length > 0) {
      this.firstByte = false;
      // The first packet MUST be CONNECT [MQTT-3.1.0-1]: anything else is refused on its
      // first byte, not buffered (up to a maximum packet size) until the connect timeout.
      if (chunk[0] !== 0x10) return this.violate({ outcome: 'protocol-error', detail: `first byte 0x${chunk[0]!.toString(16)} is not CONNECT${wrongPort(chunk, this.peer.transport)}` });
    }
    this.decoder.push(chunk);
  }

  private readingPaused = false;

  /** Stops reading the socket (flow control for clients that cannot be told a limit). */
  pauseReading(): void {
    if (this.readingPaused || this.state === 'closed') return;
    this.readingPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.socket.resume();
  }

  /** DecoderSink */
  onPacket(packet: Packet, raw: Buffer): void {
    if (this.state === 'closed') return;
    if (this.state === 'authenticating') {
      // Reading is paused, so at most the rest of one read is held here; the cap is for
      // transports that deliver large chunks. Nothing is processed before CONNACK.
      this.heldBytes += raw.length;
      if (this.held!.length >= MAX_HELD_PACKETS || this.heldBytes > 2 * this.ctx.options.maxPacketSize) {
        return this.violate({ outcome: 'protocol-error', detail: 'too much sent before CONNACK' });
      }
      this.held!.push({ packet, raw });
      return;
    }
    this.ctx.metrics.packetsIn++;
    this.seen = true;
    let v: Violation | undefined;
    try {
      v = handlePacket(this, packet, raw);
    } catch (err) {
      // Only a bug gets here: this client is cut off (0x83), the gateway and everyone else carry on.
      this.log.error({ err, cmd: packet.cmd }, 'packet handling failed');
      v = { outcome: 'implementation-specific-error', detail: `${packet.cmd} could not be handled` };
    }
    if (v !== undefined) this.violate(v);
  }

  /** Holds taken by beginAuthentication (the password check, then the commit CONNACK may wait for). */
  private holds = 0;

  /** CONNECT is being authenticated: stop reading and hold what was already read. */
  beginAuthentication(): void {
    if (++this.holds > 1) return;
    this.state = 'authenticating';
    this.held = [];
    this.socket.pause();
  }

  /**
   * Authentication ended (accepted, refused or the client left): packets that arrived
   * behind CONNECT are processed now, in order, if the client was accepted; then reading
   * resumes (unless flow control paused it meanwhile).
   */
  endAuthentication(): void {
    if (this.holds > 0 && --this.holds > 0) return;
    const held = this.held ?? [];
    this.held = undefined;
    for (const h of held) {
      if (this.state !== 'connected') break;
      this.onPacket(h.packet, h.raw);
    }
    // Resumed even when refused: a closing socket must read the peer's FIN to finish closing.
    if (!this.readingPaused) this.socket.resume();
  }

  /** DecoderSink */
  onError(err: DecodeError): void {
    if (this.state === 'closed') return;
    const outcome: Outcome = err.kind === 'too-large' ? 'packet-too-large' : err.kind === 'protocol-error' ? 'protocol-error' : 'malformed-packet';
    // Garbage behind CONNECT: the client is cut off, without waiting for the verdict.
    if (this.state === 'authenticating') return this.violate({ outcome, detail: err.detail });
    if (this.state === 'awaiting-connect') {
      if (err.kind === 'protocol-error') {
        // A v5 CONNECT against the rules (a property twice) is told so with CONNACK 0x82 before the close [MQTT-4.13.1-1].
        this.writeRaw(Buffer.from([0x20, 0x03, 0x00, 0x82, 0x00]));
      } else if (err.kind === 'malformed' && err.firstByte >> 4 === 1 && /protocol version/i.test(err.detail)) {
        // An unknown protocol level in CONNECT is answered with CONNACK 0x01 [MQTT-3.1.2-2].
        this.ctx.metrics.connectionsRefused++;
        this.ctx.warn(this, 'unsupported-protocol', 'unsupported protocol version in CONNECT');
        this.writeRaw(Buffer.from([0x20, 0x02, 0x00, 0x01]));
        return this.end();
      }
    }
    this.violate({ outcome, detail: err.detail });
  }

  /**
   * The dispatcher's verdict: count, log (rate-limited), tell a v5 client why with a
   * DISCONNECT reason code [MQTT-4.13.1-1], close. Before CONNACK no DISCONNECT is sent.
   */
  violate(v: Violation): void {
    if (this.state === 'closed') return;
    this.ctx.metrics.violation(v.outcome);
    this.ctx.warn(this, v.outcome, v.detail);
    if (this.state === 'connected' && this.version === 5) this.sendDisconnect(v.outcome, v.detail);
    this.end();
  }

  sendDisconnect(outcome: Outcome, detail?: string): void {
    const reasonCode = V5_REASON[outcome];
    if (detail !== undefined && this.send({ cmd: 'disconnect', reasonCode, properties: { reasonString: detail.slice(0, 200) } })) return;
    // Without the Reason String when it would exceed the client's Maximum Packet Size:
    // the reason code still gets there [MQTT-3.14.2-3].
    this.send({ cmd: 'disconnect', reasonCode });
  }

  // ---- outbound -----------------------------------------------------------------

  get window(): number {
    return Math.min(this.clientReceiveMaximum, this.ctx.options.maxInflight);
  }

  get congested(): boolean {
    return this.pendingBytes + this.socket.writableLength > this.ctx.options.socketHighWater;
  }

  /** Encodes and queues a packet; false when it was not sent (too large for the client, or unencodable). */
  send(packet: Packet): boolean {
    let buf: Buffer;
    try {
      buf = encode(packet, this.version);
    } catch (err) {
      this.log.error({ err, cmd: packet.cmd }, 'packet encoding failed');
      return false;
    }
    if (buf.length > this.clientMaxPacketSize) {
      // [MQTT-3.1.2-24]: never send a packet larger than the client's Maximum Packet Size.
      this.log.debug({ cmd: packet.cmd, size: buf.length }, 'packet over client maximum size not sent');
      return false;
    }
    this.writeRaw(buf);
    return true;
  }

  sendPublish(msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined, packetId: number, dup: boolean): DropReason | undefined {
    if (this.state === 'closed') return undefined;
    let expiry: number | undefined;
    if (msg.expiresAt !== undefined) {
      const left = msg.expiresAt - this.ctx.clock.now();
      // Expired before its delivery started: deleted [MQTT-3.3.2-5]. A resend (DUP) is of a
      // delivery already started: it is owed whatever its age [MQTT-4.4.0-1], and dropping it
      // would free a QoS 2 packet id the client may still hold (a later message under that id
      // would be taken for a duplicate and lost).
      if (left <= 0 && !dup) return 'expired';
      expiry = Math.max(0, Math.ceil(left / 1000)); // [MQTT-3.3.2-6] remaining lifetime
    }
    const v5 = this.version === 5;
    let buf: Buffer;
    try {
      if (!v5 || (subIds === undefined && expiry === undefined && this.clientTopicAliasMax === 0)) {
        buf = sharedEncoding(this, msg, qos, retainFlag);
        if (buf.length > this.clientMaxPacketSize) return 'too-large-for-client';
        if (qos > 0) {
          // The packet id goes into the bytes: into a copy when other subscribers share them.
          if (encodingShared(this)) buf = Buffer.from(buf);
          buf.writeUInt16BE(packetId, publishPacketIdOffset(buf));
          if (dup) setDupFlag(buf);
        }
      } else {
        const encoded = encodeV5Publish(this, msg, qos, retainFlag, subIds, packetId, dup, expiry);
        if (encoded === undefined) return 'too-large-for-client';
        buf = encoded;
      }
    } catch (err) {
      // A message the encoder refuses must cost this one delivery, never the router or
      // the connection that published it (an exception here would cross the transport).
      this.log.error({ err, topic: msg.topic }, 'publish encoding failed');
      return 'unencodable';
    }
    this.ctx.metrics.messagesOut++;
    this.writeRaw(buf);
    return undefined;
  }

  sendPubrel(packetId: number): void {
    this.writeRaw(encodeAck('pubrel', packetId));
  }

  /**
   * Queues bytes; what one turn of the event loop queues goes out as one socket write, or
   * as soon as FLUSH_NOW_BYTES are queued.
   */
  writeRaw(buf: Buffer): void {
    if (this.state === 'closed') return;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    this.ctx.metrics.packetsOut++;
    if (this.pendingBytes >= FLUSH_NOW_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.ctx.scheduleFlush(this);
    }
  }

  flush(): void {
    this.flushScheduled = false;
    const n = this.pending.length;
    if (n === 0 || this.state === 'closed' && this.socket.destroyed) return;
    const data = n === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.ctx.metrics.bytesOut += data.length;
    if (!this.socket.write(data)) {
      if (this.drainWaiting) return;
      this.drainWaiting = true;
      this.socket.once('drain', () => {
        this.drainWaiting = false;
        this.session?.pump();
      });
    } else if (!this.pumpScheduled && (this.session?.queuedCount ?? 0) > 0) {
      // The socket took it all, so no 'drain' will come: messages queued while the bytes
      // of this tick were over the high-water mark move on at the next turn of the loop.
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        if (this.state !== 'closed') this.session?.pump();
      });
    }
  }

  private pumpScheduled = false;

  // ---- timers and close ------------------------------------------------------------

  /** Called by the CONNECT handler once CONNACK 0x00 is queued. */
  connected(keepalive: number): void {
    this.state = 'connected';
    this.keepalive = keepalive;
    this.lastSeen = this.ctx.clock.now();
    this.seen = false;
    this.logger = undefined; // re-derive with the client id
  }

  /** Flushes what is queued and closes the connection. */
  end(): void {
    if (this.state === 'closed') return;
    this.flush();
    const wasAuthenticating = this.state === 'authenticating';
    this.state = 'closed';
    this.socket.end();
    // Paused for authentication or for flow control: read on (nothing more is processed), so
    // the peer's FIN arrives and the socket closes now, not after the 2 s below.
    if (wasAuthenticating || this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
    // A peer that never reads must not keep the socket half-open forever.
    const t = this.ctx.clock.setTimeout(() => this.socket.destroy(), 2000);
    this.socket.once('close', () => t.cancel());
  }

  destroy(): void {
    this.state = 'closed';
    this.socket.destroy();
  }

  private closedOnce = false;

  private onClosed(hadError = false): void {
    if (hadError && this.ctx.log.isLevelEnabled('debug')) this.log.debug('socket closed after an error');
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.state = 'closed';
    this.authTimer?.cancel();
    this.authTimer = undefined;
    this.held = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.ctx.connectionClosed(this);
  }
}

/** Resets and other socket errors end in 'close', which does the cleanup. */
function ignoreSocketError(): void {}

/** The peer half-closed: close our side too (in-memory duplexes allow half-open). */
function endWritable(this: Duplex): void {
  this.end();
}

export interface ConnectedClient {
  clientId: string;
  address: string;
  transport: string;
  protocol: number;
}

/** Up to `limit` connected clients (status page and `outpost status`). */
export function connectedClients(connections: Iterable<Connection>, limit: number): ConnectedClient[] {
  const out: ConnectedClient[] = [];
  for (const c of connections) {
    if (out.length >= limit) break;
    if (c.state !== 'connected') continue;
    out.push({ clientId: c.clientId, address: `${c.peer.remoteAddress}:${c.peer.remotePort}`, transport: c.peer.transport, protocol: c.version });
  }
  return out;
}

/**
 * What a first packet that is not CONNECT looks like, when it looks like another listener's
 * client: a TLS ClientHello (0x16 0x03) or an HTTP request on a plain port is a client pointed
 * at the wrong port, which the operator fixes on the client side.
 */
function wrongPort(chunk: Buffer, transport: string): string {
  if (transport !== 'tcp') return '';
  if (chunk[0] === 0x16 && (chunk.length < 2 || chunk[1] === 0x03)) return ' (a TLS handshake: a TLS client on the plain mqtt port?)';
  if (/^(GET|POST|HEAD|PUT|OPTIONS) /.test(chunk.subarray(0, 8).toString('latin1'))) return ' (an HTTP request: a WebSocket client or a browser on the plain mqtt port?)';
  return '';
}
