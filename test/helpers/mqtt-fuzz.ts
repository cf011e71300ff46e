/**
 * The MQTT fuzz corpus and generator shared by the in-process broker fuzz test and the
 * live-gateway fuzz run (scripts/fuzz-live.ts): valid encodings of every packet type for
 * 3.1.1 and 5, well-formed chatter, and mutations (bit flips, truncation, wrong length
 * fields, splices, random bytes) thrown over a pool of connections that is refilled as the
 * broker closes them. Seeded, so a failure replays.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { readFrameLength } from '../../src/mqtt/codec.js';
import { remainingLength } from './wire.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

// ---- randomness -------------------------------------------------------------------------

export type Rng = () => number;
export const int = (r: Rng, n: number) => Math.floor(r() * n);
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
export const randomBytes = (r: Rng, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

// ---- the corpus: valid encodings of every packet type ------------------------------------

const topics = ['fz/a', 'fz/b/c', 'fz/', '/fz', 'fz/\u00e9t\u00e9', 'fz/a/b/c/d/e'];
/** Topics the fuzz publishes on (retained ones among them). */
export const FUZZ_TOPICS: readonly string[] = topics;
/** Client ids the fuzz connects with (persistent sessions among them). */
export const FUZZ_CLIENT_IDS: readonly string[] = [...Array.from({ length: 40 }, (_, i) => `fz-${i}`), 'fz-c', 'fz-p', 'fz-w'];
const filters = ['fz/#', 'fz/+', '#', '+/+', 'fz/a', '$share/g/fz/#', '$SYS/#', 'fz/+/c'];

export function packetsFor(version: 4 | 5): Packet[] {
  const v5 = version === 5;
  const props = <T>(p: T) => (v5 ? p : undefined);
  const out: Packet[] = [];
  for (const clean of [true, false]) {
    out.push({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: `fz-${clean ? 'c' : 'p'}`, clean, keepalive: 30,
      properties: props({ sessionExpiryInterval: clean ? 0 : 30, receiveMaximum: 5, maximumPacketSize: 4096, topicAliasMaximum: 3, requestResponseInformation: true, userProperties: { k: 'v' } }),
    } as Packet);
  }
  out.push({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: 'fz-w', clean: true, keepalive: 10, username: 'u', password: Buffer.from('p'),
    will: { topic: 'fz/will', payload: Buffer.from('gone'), qos: 1, retain: true, properties: props({ willDelayInterval: 1, messageExpiryInterval: 5, contentType: 'text/plain' }) },
  } as Packet);
  out.push({ cmd: 'connack', sessionPresent: false, returnCode: 0, reasonCode: 0 } as Packet);
  for (const qos of [0, 1, 2] as const) {
    for (const retain of [false, true]) {
      out.push({
        cmd: 'publish', topic: topics[(qos * 2 + (retain ? 1 : 0)) % topics.length]!, payload: Buffer.from(`payload-${qos}`), qos, retain, dup: qos > 0 && retain,
        ...(qos > 0 ? { messageId: 1 + qos } : {}),
        properties: props({ topicAlias: 1 + qos, messageExpiryInterval: 60, payloadFormatIndicator: true, contentType: 'c', responseTopic: 'fz/r', correlationData: Buffer.from('x'), userProperties: { a: '1' } }),
      } as Packet);
    }
  }
  if (v5) out.push({ cmd: 'publish', topic: '', payload: Buffer.from('aliased'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } } as Packet);
  for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
    out.push({ cmd, messageId: 2, ...(v5 ? { reasonCode: 0, properties: { reasonString: 'r' } } : {}) } as Packet);
  }
  out.push({
    cmd: 'subscribe', messageId: 3,
    subscriptions: filters.slice(0, 4).map((topic, i) => ({ topic, qos: (i % 3) as 0 | 1 | 2, ...(v5 ? { nl: i === 1, rap: i === 2, rh: (i % 3) as 0 | 1 | 2 } : {}) })),
    properties: props({ subscriptionIdentifier: 7, userProperties: { s: 't' } }),
  } as Packet);
  out.push({ cmd: 'subscribe', messageId: 4, subscriptions: filters.slice(4).map((topic) => ({ topic, qos: 1 })) } as Packet);
  out.push({ cmd: 'suback', messageId: 3, granted: [0, 1, 2, 128] } as Packet);
  out.push({ cmd: 'unsubscribe', messageId: 5, unsubscriptions: ['fz/#', 'fz/+'] } as Packet);
  out.push({ cmd: 'unsuback', messageId: 5, ...(v5 ? { granted: [0, 17] } : {}) } as Packet);
  out.push({ cmd: 'pingreq' } as Packet, { cmd: 'pingresp' } as Packet);
  out.push({ cmd: 'disconnect', ...(v5 ? { reasonCode: 4, properties: { sessionExpiryInterval: 0 } } : {}) } as Packet);
  if (v5) out.push({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'x' } } as Packet);
  return out;
}

export interface Corpus {
  /** Every packet type, encoded, per version. */
  all: Record<4 | 5, Buffer[]>;
  /** What keeps a connection alive and routing: publishes, subscribes, pings. */
  benign: Record<4 | 5, Buffer[]>;
}

export function buildCorpus(): Corpus {
  const all = { 4: [] as Buffer[], 5: [] as Buffer[] };
  const benign = { 4: [] as Buffer[], 5: [] as Buffer[] };
  for (const v of [4, 5] as const) {
    for (const p of packetsFor(v)) {
      const b = mqttPacket.generate(p, { protocolVersion: v });
      all[v].push(b);
      if (['publish', 'subscribe', 'unsubscribe', 'pingreq', 'puback', 'pubrec', 'pubrel', 'pubcomp'].includes(p.cmd) && !(p.cmd === 'publish' && v === 5 && p.topic === '')) benign[v].push(b);
    }
  }
  return { all, benign };
}

export function connectBytes(r: Rng, version: 4 | 5, keepalive: number): Buffer {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: `fz-${int(r, 40)}`, clean: r() < 0.7, keepalive,
    properties: version === 5 ? { sessionExpiryInterval: int(r, 2) * 60, topicAliasMaximum: 4 } : undefined,
  } as Packet, { protocolVersion: version });
}

/** Well-formed client traffic with fresh packet ids: QoS 0-2 publishes, acks for the broker's ids, (un)subscribes, pings. */
export function wellFormed(r: Rng, c: FuzzConn): Buffer {
  const v = c.version;
  const x = r();
  let p: Packet;
  if (x < 0.45) {
    const qos = int(r, 3) as 0 | 1 | 2;
    p = {
      cmd: 'publish', topic: pick(r, topics), payload: randomBytes(r, int(r, 40)), qos, retain: r() < 0.1, dup: false,
      ...(qos > 0 ? { messageId: c.nextId = (c.nextId % 65535) + 1 } : {}),
      ...(v === 5 && r() < 0.3 ? { properties: { messageExpiryInterval: 1 + int(r, 100), userProperties: { n: String(int(r, 9)) } } } : {}),
    } as Packet;
  } else if (x < 0.75) {
    p = { cmd: pick(r, ['puback', 'pubrec', 'pubcomp', 'pubrel'] as const), messageId: 1 + int(r, 30) } as Packet;
  } else if (x < 0.85) {
    p = { cmd: 'subscribe', messageId: c.nextId = (c.nextId % 65535) + 1, subscriptions: [{ topic: pick(r, filters), qos: int(r, 3) as 0 | 1 | 2 }] } as Packet;
  } else if (x < 0.9) {
    p = { cmd: 'unsubscribe', messageId: c.nextId = (c.nextId % 65535) + 1, unsubscriptions: [pick(r, filters)] } as Packet;
  } else {
    p = { cmd: 'pingreq' } as Packet;
  }
  return mqttPacket.generate(p, { protocolVersion: v });
}


/** The header length (type byte plus remaining-length bytes) of a valid encoding. */
export function headerLength(b: Buffer): number {
  let i = 1;
  while (i < b.length && (b[i]! & 0x80) !== 0) i++;
  return i + 1;
}

export const MUTATIONS = ['bit-flips', 'truncate', 'length-field', 'random-bytes', 'byte-set', 'extend', 'splice', 'first-byte', 'valid'] as const;

export function mutate(r: Rng, corpus: Corpus, version: 4 | 5): Buffer {
  const base = pick(r, corpus.all[version]);
  const kind = pick(r, MUTATIONS);
  switch (kind) {
    case 'bit-flips': {
      const b = Buffer.from(base);
      for (let i = 0, n = 1 + int(r, 3); i < n; i++) b[int(r, b.length)]! ^= 1 << int(r, 8);
      return b;
    }
    case 'truncate':
      return base.subarray(0, int(r, base.length));
    case 'length-field': {
      const h = headerLength(base);
      const body = base.subarray(h);
      const len = pick(r, [0, 1, body.length - 1, body.length + 1, body.length + int(r, 50), int(r, 300), 268_435_455]);
      return Buffer.concat([Buffer.from([base[0]!, ...remainingLength(Math.max(0, len))]), body]);
    }
    case 'random-bytes':
      return randomBytes(r, 1 + int(r, 64));
    case 'byte-set': {
      const b = Buffer.from(base);
      for (let i = 0, n = 1 + int(r, 4); i < n; i++) b[int(r, b.length)] = pick(r, [0, 0xff, 0x80, 0x7f, int(r, 256)]);
      return b;
    }
    case 'extend':
      return Buffer.concat([base, randomBytes(r, 1 + int(r, 16))]);
    case 'splice': {
      const other = pick(r, corpus.all[version]);
      return Buffer.concat([base.subarray(0, int(r, base.length)), other.subarray(int(r, other.length))]);
    }
    case 'first-byte': {
      const b = Buffer.from(base);
      b[0] = int(r, 256);
      return b;
    }
    case 'valid':
      return pick(r, corpus.benign[version]);
  }
}

// ---- a fuzz connection: bytes out, frames counted in ---------------------------------------

export class FuzzConn {
  closed = false;
  pingresps = 0;
  /** Chatty connections send mostly well-formed traffic, so they live long enough to reach deep states. */
  chatty = false;
  nextId = 1;
  private rest: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(
    readonly stream: Duplex | net.Socket,
    readonly version: 4 | 5,
  ) {
    stream.on('data', (b: Buffer) => this.onData(b));
    stream.on('error', () => {});
    stream.on('end', () => {
      stream.end(); // like a TCP socket without half-open
      this.onClose();
    });
    stream.on('close', () => this.onClose());
  }

  write(b: Buffer): void {
    if (!this.closed && !this.stream.destroyed && b.length > 0) this.stream.write(b);
  }

  /** PINGREQ; resolves true on PINGRESP, false when closed or after `ms`. */
  probe(ms: number): Promise<boolean> {
    const before = this.pingresps;
    this.write(Buffer.from([0xc0, 0x00]));
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve(this.pingresps > before);
      };
      const t = setTimeout(done, ms);
      this.waiters.push(done);
    });
  }

  private onData(b: Buffer): void {
    // The broker only sends well-formed packets; split them by the fixed header.
    let buf = this.rest.length > 0 ? Buffer.concat([this.rest, b]) : b;
    let off = 0;
    for (;;) {
      const n = readFrameLength(buf, off);
      if (n === undefined || n < 0 || off + n > buf.length) break;
      if (buf[off] === 0xd0) this.pingresps++;
      off += n;
    }
    this.rest = Buffer.from(buf.subarray(off));
    if (this.pingresps > 0) this.wake();
  }

  private onClose(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}


export interface Stats {
  packets: number;
  connections: number;
  writeErrors: unknown[];
}

/** Throws `count` fuzz packets over a pool of connections made by `open`, replacing closed ones. */
export async function fuzz(
  r: Rng, corpus: Corpus, count: number, poolSize: number,
  open: (version: 4 | 5) => FuzzConn, onBatch: (sent: number) => void | Promise<void>, all: FuzzConn[], keepalive = 30,
): Promise<Stats> {
  const stats: Stats = { packets: 0, connections: 0, writeErrors: [] };
  const fresh = (): FuzzConn => {
    const version = r() < 0.5 ? 4 : 5;
    const c = open(version);
    stats.connections++;
    all.push(c);
    c.chatty = r() < 0.25;
    if (c.chatty || r() < 0.4) c.write(connectBytes(r, version, keepalive));
    return c;
  };
  const pool = Array.from({ length: poolSize }, fresh);
  while (stats.packets < count) {
    for (let i = 0; i < poolSize && stats.packets < count; i++) {
      let c = pool[i]!;
      if (c.closed) c = pool[i] = fresh();
      // Mostly one packet per write; sometimes several in one write, sometimes one split in two.
      const n = r() < 0.15 ? 2 + int(r, 3) : 1;
      const chunks: Buffer[] = [];
      for (let k = 0; k < n; k++) chunks.push(c.chatty && r() < 0.92 ? wellFormed(r, c) : mutate(r, corpus, c.version));
      stats.packets += n;
      let data = Buffer.concat(chunks);
      try {
        if (r() < 0.1 && data.length > 1) {
          const cut = 1 + int(r, data.length - 1);
          c.write(data.subarray(0, cut));
          data = data.subarray(cut);
        }
        c.write(data);
      } catch (err) {
        if (stats.writeErrors.length < 3) console.error((err as Error).stack);
        stats.writeErrors.push(err);
      }
    }
    await tick();
    await onBatch(stats.packets);
  }
  return stats;
}
