/**
 * A test MQTT client that speaks packets, not an API: it sends exactly what the test
 * says (including garbage) and records everything the broker sends back.
 */
import type { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';

export class RawClient {
  readonly received: Packet[] = [];
  closed = false;
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  private waiters: { match: (p: Packet) => boolean; resolve: (p: Packet) => void }[] = [];
  private closeWaiters: (() => void)[] = [];
  version: 3 | 4 | 5;

  constructor(
    readonly stream: Duplex,
    version: 3 | 4 | 5 = 4,
  ) {
    this.version = version;
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (p: Packet) => this.onPacket(p));
    this.parser.on('error', () => {});
    stream.on('data', (b: Buffer) => this.parser.parse(b));
    stream.on('error', () => {});
    stream.on('close', () => this.onClose());
    stream.on('end', () => {
      // Like a net.Socket (allowHalfOpen false): when the broker ends, end our side too,
      // so the broker sees 'close' without waiting for its destroy timer.
      this.stream.end();
      this.onClose();
    });
  }

  send(packet: Packet): void {
    this.stream.write(mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  sendRaw(bytes: Buffer | number[]): void {
    this.stream.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** CONNECT and wait for CONNACK. */
  async connect(opts: Partial<Extract<Packet, { cmd: 'connect' }>> = {}): Promise<Extract<Packet, { cmd: 'connack' }>> {
    this.send({ cmd: 'connect', clientId: 'c1', protocolVersion: this.version, clean: true, keepalive: 0, ...opts } as Packet);
    return (await this.next('connack')) as Extract<Packet, { cmd: 'connack' }>;
  }

  /** Resolves with the next received packet of that type (already received ones first). */
  next<C extends Packet['cmd']>(cmd: C, timeoutMs = 2000): Promise<Extract<Packet, { cmd: C }>> {
    const i = this.received.findIndex((p) => p.cmd === cmd);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0] as Extract<Packet, { cmd: C }>);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${cmd}; got ${this.received.map((p) => p.cmd).join(',') || 'nothing'}`)), timeoutMs);
      this.waiters.push({
        match: (p) => p.cmd === cmd,
        resolve: (p) => {
          clearTimeout(t);
          resolve(p as Extract<Packet, { cmd: C }>);
        },
      });
    });
  }

  /** Resolves when the broker closed the connection. */
  waitClosed(timeoutMs = 2000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Waits `ms` and returns what arrived meanwhile (and was not consumed). */
  async settle(ms = 50): Promise<Packet[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.received;
  }

  end(): void {
    this.stream.end();
  }

  destroy(): void {
    this.stream.destroy();
  }

  private onPacket(p: Packet): void {
    const w = this.waiters.findIndex((x) => x.match(p));
    if (w >= 0) {
      const [waiter] = this.waiters.splice(w, 1);
      waiter!.resolve(p);
      return;
    }
    this.received.push(p);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.closeWaiters) f();
    this.closeWaiters = [];
  }
}
