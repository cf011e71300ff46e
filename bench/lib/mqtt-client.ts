// Minimal raw MQTT client for load generation: node:net + mqtt-packet.
// Hot path (PUBLISH / PUBACK) is decoded inline without allocating; every other
// packet is handed, as one complete frame, to an mqtt-packet parser.
import net from 'node:net';
import mqtt from 'mqtt-packet';
import type { Packet, QoS } from 'mqtt-packet';

export type ProtocolVersion = 4 | 5;

/** Called for every PUBLISH; payload is buf[start, end). */
export type PublishHandler = (buf: Buffer, start: number, end: number, qos: number, id: number) => void;

export interface ConnectOptions {
  port: number;
  host?: string;
  clientId: string;
  protocol: ProtocolVersion;
  keepalive?: number;
  timeoutMs: number;
  /** Clean session (default true); false keeps the broker-side session across connections. */
  clean?: boolean;
  /** Set before CONNECT is sent: a resumed session's queued messages may follow CONNACK in the same chunk. */
  onPublish?: PublishHandler;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The broker answered CONNECT with a non-zero return/reason code. */
export class ConnackRefused extends Error {
  constructor(readonly code: number) {
    super(`CONNACK refused, code ${code}${code === 1 ? ' (unacceptable protocol version)' : ''}`);
  }
}

export class RawClient {
  onPublish: PublishHandler | null = null;
  onPuback: ((id: number) => void) | null = null;
  /** Called once after each 'data' chunk has been fully processed (batch point). */
  onBatchEnd: (() => void) | null = null;
  closed = false;
  closeReason: string | null = null;
  /** Server receive maximum from CONNACK (MQTT 5), or 65535. */
  receiveMaximum = 65535;

  private pending: Buffer | null = null;
  private parser: ReturnType<typeof mqtt.parser> | null = null;
  private waiters: Array<{ cmd: string; resolve: (p: Packet) => void; reject: (e: Error) => void }> = [];
  private nextId = 1;

  private constructor(
    readonly socket: net.Socket,
    readonly protocol: ProtocolVersion,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (reason: string) => {
      if (this.closed) return;
      this.closed = true;
      this.closeReason = reason;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed (${reason}) while waiting for ${w.cmd}`));
    };
    socket.on('error', (e) => fail(e.message));
    socket.on('close', () => fail('socket closed'));
  }

  static async connect(o: ConnectOptions): Promise<RawClient> {
    const socket = net.createConnection({ port: o.port, host: o.host ?? '127.0.0.1', noDelay: true });
    const client = new RawClient(socket, o.protocol);
    if (o.onPublish !== undefined) client.onPublish = o.onPublish;
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          socket.once('connect', () => resolve());
          socket.once('error', reject);
        }),
        o.timeoutMs,
        'TCP connect',
      );
      const connack = client.expect('connack', o.timeoutMs);
      client.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: o.protocol,
        clientId: o.clientId,
        clean: o.clean ?? true,
        keepalive: o.keepalive ?? 60,
      });
      const ack = await connack;
      if (ack.cmd !== 'connack') throw new Error('unexpected packet');
      const rc = ack.reasonCode ?? ack.returnCode ?? 0;
      if (rc !== 0) throw new ConnackRefused(rc);
      const rm = ack.properties?.receiveMaximum;
      if (typeof rm === 'number' && rm > 0) client.receiveMaximum = rm;
      return client;
    } catch (e) {
      socket.destroy();
      throw e;
    }
  }

  send(p: Packet): boolean {
    return this.socket.write(mqtt.generate(p, { protocolVersion: this.protocol }));
  }

  write(b: Buffer): boolean {
    return this.socket.write(b);
  }

  /** Resolves with the next packet of the given type (non-PUBLISH/PUBACK only). */
  expect(cmd: string, timeoutMs: number): Promise<Packet> {
    if (this.closed) return Promise.reject(new Error(`connection closed (${this.closeReason})`));
    const p = new Promise<Packet>((resolve, reject) => this.waiters.push({ cmd, resolve, reject }));
    return withTimeout(p, timeoutMs, `waiting for ${cmd.toUpperCase()}`);
  }

  async subscribe(topic: string, qos: QoS, timeoutMs: number): Promise<void> {
    const messageId = this.nextId++;
    const ack = this.expect('suback', timeoutMs);
    this.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
    const p = await ack;
    const g: unknown = p.cmd === 'suback' ? p.granted[0] : undefined;
    const granted = typeof g === 'number' ? g : undefined;
    if (granted === undefined || granted >= 0x80) throw new Error(`SUBACK refused for ${topic}: ${String(granted)}`);
    if (granted < qos) throw new Error(`SUBACK downgraded ${topic} to QoS ${granted}`);
  }

  /** Wait until the socket's write buffer has drained (bounded). */
  drained(timeoutMs: number): Promise<void> {
    if (!this.socket.writableNeedDrain || this.closed) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => {
        this.socket.once('drain', resolve);
        this.socket.once('close', resolve);
      }),
      timeoutMs,
      'socket drain',
    );
  }

  /** Polite close: DISCONNECT then FIN; hard destroy if it lingers. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) {
      this.socket.destroy();
      return;
    }
    const done = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    try {
      this.socket.end(mqtt.generate({ cmd: 'disconnect' }, { protocolVersion: this.protocol }));
      await withTimeout(done, timeoutMs, 'close');
    } catch {
      /* fall through to destroy */
    }
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const len = buf.length;
    let pos = 0;
    while (pos + 2 <= len) {
      // fixed header + variable-length "remaining length"
      let rl = 0;
      let mul = 1;
      let i = pos + 1;
      let ok = false;
      for (let n = 0; n < 4 && i < len; n++, i++) {
        const byte = buf[i]!;
        rl += (byte & 0x7f) * mul;
        mul *= 128;
        if ((byte & 0x80) === 0) {
          ok = true;
          i++;
          break;
        }
      }
      if (!ok) {
        if (i - pos - 1 >= 4) throw new Error('malformed remaining length from broker');
        break;
      }
      const end = i + rl;
      if (end > len) break;
      this.frame(buf, pos, i, end);
      pos = end;
    }
    if (pos < len) this.pending = buf.subarray(pos);
    if (this.onBatchEnd) this.onBatchEnd();
  }

  private frame(buf: Buffer, start: number, body: number, end: number): void {
    const b0 = buf[start]!;
    const type = b0 >> 4;
    if (type === 3 && this.onPublish) {
      const qos = (b0 >> 1) & 3;
      let p = body + 2 + buf.readUInt16BE(body);
      let id = 0;
      if (qos > 0) {
        id = buf.readUInt16BE(p);
        p += 2;
      }
      if (this.protocol === 5) {
        let plen = 0;
        let mul = 1;
        for (let n = 0; n < 4; n++) {
          const byte = buf[p++]!;
          plen += (byte & 0x7f) * mul;
          mul *= 128;
          if ((byte & 0x80) === 0) break;
        }
        p += plen;
      }
      this.onPublish(buf, p, end, qos, id);
      return;
    }
    if (type === 4 && this.onPuback) {
      this.onPuback(buf.readUInt16BE(body));
      return;
    }
    if (!this.parser) {
      this.parser = mqtt.parser({ protocolVersion: this.protocol });
      this.parser.on('packet', (p: Packet) => this.dispatch(p));
      this.parser.on('error', (e: Error) => this.socket.destroy(e));
    }
    this.parser.parse(buf.subarray(start, end));
  }

  private dispatch(p: Packet): void {
    const idx = this.waiters.findIndex((w) => w.cmd === p.cmd);
    if (idx >= 0) this.waiters.splice(idx, 1)[0]!.resolve(p);
    else if (p.cmd === 'disconnect') this.socket.destroy();
  }
}

/** Encode a 4-byte PUBACK (valid for 3.1.1 and 5.0 with implicit reason 0). */
export function writePuback(out: Buffer, off: number, id: number): void {
  out[off] = 0x40;
  out[off + 1] = 2;
  out.writeUInt16BE(id, off + 2);
}

/** Connect `count` clients with at most `concurrency` handshakes in flight. */
export async function connectMany(
  count: number,
  concurrency: number,
  mk: (i: number) => ConnectOptions,
): Promise<RawClient[]> {
  const out: RawClient[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        out[i] = await RawClient.connect(mk(i));
      } catch (e) {
        next = count; // stop the other workers early
        throw e;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, count) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const c of out) c?.destroy();
    const done = out.filter(Boolean).length;
    throw new Error(`connected ${done}/${count}: ${(failed.reason as Error).message}`);
  }
  return out;
}
