/**
 * A TCP proxy on 127.0.0.1 between the bridge and the cloud broker that misbehaves on
 * command, for flap and half-open tests:
 *
 *   bridge ──► [ accept ] ──► Pipe up   ──► cloud
 *   bridge ◄── [        ] ◄── Pipe down ◄── cloud
 *
 *   pass      forward both ways (default; `resume()` returns here)
 *   drop()    destroy every current connection (a cut cable, a NAT reset)
 *   stall()   keep the sockets open but forward nothing either way (a zombie link);
 *             connections accepted while stalled stall too
 *   halfOpenLink()  forward bridge → cloud only: the cloud gets the messages, its acks and
 *             PINGRESPs never come back (a half-open link)
 *   deafLink() forward cloud → bridge only: the bridge gets the cloud's packets, its acks
 *             never reach the cloud (the other half-open link)
 *   delay(ms) every chunk waits ms before it is forwarded
 *   slow(Bps) at most that many bytes per second per direction
 *   refuse()  accept and close at once (a broker that is not there)
 *
 * Each pipe buffers at most `maxBuffered` bytes and pauses its source beyond that, so a stall
 * under load fills the kernel buffers and then the sender's, never this process's heap.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

interface Chunk {
  data: Buffer;
  at: number;
}

class Pipe {
  private readonly queue: Chunk[] = [];
  private bytes = 0;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private tokens = 0;
  private lastFill = Date.now();

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly proxy: FaultProxy,
    /** The cloud → bridge direction (what halfOpen() stops). */
    private readonly downstream: boolean,
  ) {
    src.on('data', (data: Buffer) => {
      this.queue.push({ data, at: Date.now() + proxy.delayMs });
      this.bytes += data.length;
      if (this.bytes > proxy.maxBuffered) src.pause();
      this.pump();
    });
    src.on('end', () => {
      this.ended = true;
      this.pump();
    });
  }

  pump(): void {
    if (this.timer !== undefined || this.waitingDrain || this.dst.destroyed) return;
    if (this.proxy.stalled || (this.downstream && this.proxy.halfOpen) || (!this.downstream && this.proxy.deaf)) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const now = Date.now();
      if (head.at > now) return this.wait(head.at - now);
      let data = head.data;
      const rate = this.proxy.bytesPerSec;
      if (rate > 0) {
        this.tokens = Math.min(rate / 10, this.tokens + ((now - this.lastFill) * rate) / 1000);
        this.lastFill = now;
        if (this.tokens < 1) return this.wait(Math.ceil((1000 * (1 - this.tokens)) / rate));
        const n = Math.min(data.length, Math.floor(this.tokens));
        this.tokens -= n;
        if (n < data.length) {
          head.data = data.subarray(n);
          data = data.subarray(0, n);
        } else {
          this.queue.shift();
        }
      } else {
        this.queue.shift();
      }
      this.bytes -= data.length;
      if (this.src.isPaused() && this.bytes <= this.proxy.maxBuffered / 2) this.src.resume();
      if (!this.dst.write(data)) {
        this.waitingDrain = true;
        this.dst.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.ended) this.dst.end();
  }

  private wait(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface Link {
  client: Socket;
  server: Socket;
  pipes: Pipe[];
}

export class FaultProxy {
  port = 0;
  /** Connections accepted so far (refused ones included). */
  accepted = 0;
  stalled = false;
  /** Bridge → cloud still flows, cloud → bridge does not (acks and PINGRESPs never come back). */
  halfOpen = false;
  /** Cloud → bridge still flows, bridge → cloud does not. */
  deaf = false;
  delayMs = 0;
  bytesPerSec = 0;
  private refusing = false;
  private readonly links = new Set<Link>();
  private server: Server | undefined;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
    readonly maxBuffered = 1024 * 1024,
  ) {}

  /** Connections open right now. */
  get active(): number {
    return this.links.size;
  }

  async start(port = 0): Promise<void> {
    const server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.drop();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  drop(): void {
    for (const link of [...this.links]) this.unlink(link);
  }

  stall(): void {
    this.stalled = true;
  }

  /** A half-open link: what the bridge sends reaches the cloud, nothing comes back. */
  halfOpenLink(): void {
    this.halfOpen = true;
  }

  /** The other half-open link: what the cloud sends reaches the bridge, nothing goes back. */
  deafLink(): void {
    this.deaf = true;
  }

  delay(ms: number): void {
    this.delayMs = ms;
  }

  slow(bytesPerSec: number): void {
    this.bytesPerSec = bytesPerSec;
  }

  refuse(): void {
    this.refusing = true;
  }

  /** Back to plain forwarding (no stall, delay, rate limit or refusal). */
  resume(): void {
    this.stalled = false;
    this.halfOpen = false;
    this.deaf = false;
    this.refusing = false;
    this.delayMs = 0;
    this.bytesPerSec = 0;
    for (const link of this.links) for (const p of link.pipes) p.pump();
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.refusing) {
      client.destroy();
      return;
    }
    const server = connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    const link: Link = { client, server, pipes: [] };
    link.pipes.push(new Pipe(client, server, this, false), new Pipe(server, client, this, true));
    this.links.add(link);
    const gone = (): void => this.unlink(link);
    client.on('error', gone);
    server.on('error', gone);
    // Both sockets closed (each side ended after its pipe drained): the link is over.
    let closed = 0;
    const onClose = (): void => {
      if (++closed === 2) gone();
    };
    client.once('close', onClose);
    server.once('close', onClose);
  }

  private unlink(link: Link): void {
    if (!this.links.delete(link)) return;
    for (const p of link.pipes) p.dispose();
    link.client.destroy();
    link.server.destroy();
  }
}
