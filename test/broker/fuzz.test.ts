/**
 * Fuzzing the broker with random and mutated packets (seeded, so a failure replays):
 * valid encodings of every packet type, both protocol versions, then bit flips,
 * truncation, wrong length fields, spliced and random bytes, over many connections.
 * Nothing may escape as an exception, every connection must keep working or be closed,
 * a healthy client must still get through, and the memory must come back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { remainingLength } from '../helpers/wire.js';
import { prng } from '../helpers/prng.js';
import net from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { startBroker, silentLog, type Harness } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RawClient } from '../helpers/raw-client.js';
import { Broker } from '../../src/broker/broker.js';
import { TcpListener } from '../../src/broker/tcp-listener.js';
import { readFrameLength } from '../../src/mqtt/codec.js';
import type { Connection } from '../../src/broker/connection.js';

Error.stackTraceLimit = 60;
// ---- randomness -------------------------------------------------------------------------

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const randomBytes = (r: Rng, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

// ---- the corpus: valid encodings of every packet type ------------------------------------

const topics = ['fz/a', 'fz/b/c', 'fz/', '/fz', 'fz/\u00e9t\u00e9', 'fz/a/b/c/d/e'];
const filters = ['fz/#', 'fz/+', '#', '+/+', 'fz/a', '$share/g/fz/#', '$SYS/#', 'fz/+/c'];

function packetsFor(version: 4 | 5): Packet[] {
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

interface Corpus {
  /** Every packet type, encoded, per version. */
  all: Record<4 | 5, Buffer[]>;
  /** What keeps a connection alive and routing: publishes, subscribes, pings. */
  benign: Record<4 | 5, Buffer[]>;
}

function buildCorpus(): Corpus {
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

function connectBytes(r: Rng, version: 4 | 5, keepalive: number): Buffer {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: `fz-${int(r, 40)}`, clean: r() < 0.7, keepalive,
    properties: version === 5 ? { sessionExpiryInterval: int(r, 2) * 60, topicAliasMaximum: 4 } : undefined,
  } as Packet, { protocolVersion: version });
}

/** Well-formed client traffic with fresh packet ids: QoS 0-2 publishes, acks for the broker's ids, (un)subscribes, pings. */
function wellFormed(r: Rng, c: FuzzConn): Buffer {
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
function headerLength(b: Buffer): number {
  let i = 1;
  while (i < b.length && (b[i]! & 0x80) !== 0) i++;
  return i + 1;
}

const MUTATIONS = ['bit-flips', 'truncate', 'length-field', 'random-bytes', 'byte-set', 'extend', 'splice', 'first-byte', 'valid'] as const;

function mutate(r: Rng, corpus: Corpus, version: 4 | 5): Buffer {
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

class FuzzConn {
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

// ---- process-level traps -------------------------------------------------------------------

const escaped: unknown[] = [];
const onUncaught = (err: unknown) => escaped.push(err);
beforeEach(() => {
  escaped.length = 0;
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
afterEach(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

function forceGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function healthyPair(make: () => RawClient): Promise<{ sub: RawClient; pub: RawClient; roundTrip: (n: number) => Promise<void> }> {
  const sub = make();
  expect((await sub.connect({ clientId: 'healthy-sub', keepalive: 0 })).returnCode).toBe(0);
  sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'healthy/+', qos: 1 }] });
  expect((await sub.next('suback')).granted).toEqual([1]);
  const pub = make();
  expect((await pub.connect({ clientId: 'healthy-pub', keepalive: 0 })).returnCode).toBe(0);
  const roundTrip = async (n: number) => {
    pub.send({ cmd: 'publish', topic: `healthy/${n}`, payload: Buffer.from(`ok-${n}`), qos: 1, retain: false, dup: false, messageId: n });
    expect((await pub.next('puback', 5000)).messageId).toBe(n);
    const got = await sub.next('publish', 5000);
    expect(String(got.payload)).toBe(`ok-${n}`);
    sub.send({ cmd: 'puback', messageId: got.messageId });
  };
  return { sub, pub, roundTrip };
}

/** Open broker connections by state, for the "works or closed" check. */
function openConnections(broker: Broker): Connection[] {
  return [...(broker['connections'] as Set<Connection>)];
}

interface Stats {
  packets: number;
  connections: number;
  writeErrors: unknown[];
}

/** Throws `count` fuzz packets over a pool of connections made by `open`, replacing closed ones. */
async function fuzz(
  r: Rng, corpus: Corpus, count: number, poolSize: number,
  open: (version: 4 | 5) => FuzzConn, onBatch: (sent: number) => void, all: FuzzConn[], keepalive = 30,
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
    onBatch(stats.packets);
  }
  return stats;
}

/**
 * Every connection must answer a PINGREQ or be closed. One that does neither must be
 * waiting for the rest of a packet; time (connect timeout, keepalive) must then close it,
 * unless it is a connected client whose keepalive (0 = none, by its choice) has not run
 * out within the `waitedMs` that `letTimePass` lets pass.
 */
async function checkWorksOrClosed(
  broker: Broker, conns: FuzzConn[], waitedMs: number, letTimePass: () => Promise<void>,
): Promise<{ alive: number; closedByTime: number }> {
  const open = conns.filter((c) => !c.closed);
  const answers = await Promise.all(open.map((c) => c.probe(1000)));
  const alive = answers.filter(Boolean).length;
  const silent = open.filter((c, i) => !answers[i] && !c.closed);
  if (silent.length === 0) return { alive, closedByTime: 0 };
  await letTimePass();
  for (let i = 0; i < 100 && silent.some((c) => !c.closed); i++) await sleep(5);
  const stuck = silent.filter((c) => !c.closed);
  // A connection the broker is closing (state 'closed', socket not gone yet) counts as closed.
  const brokerSide = openConnections(broker).filter((c) => !c.clientId.startsWith('healthy') && c.state !== 'closed');
  for (const bc of brokerSide) {
    if (bc.state !== 'connected' || (bc.keepalive !== 0 && bc.keepalive * 1500 < waitedMs)) {
      expect.fail(`connection ${bc.clientId || '(no id)'} in state ${bc.state} with keepalive ${bc.keepalive} neither works nor was closed`);
    }
  }
  expect(stuck.length).toBeLessThanOrEqual(brokerSide.length);
  return { alive, closedByTime: silent.length - stuck.length };
}

describe('fuzzing the broker', () => {
  it('survives 100,000 random and mutated packets over in-memory connections', async () => {
    const gc = forceGc();
    const r = prng(Number(process.env.FUZZ_SEED ?? 0x5eed)); // FUZZ_SEED=n replays another run
    const corpus = buildCorpus();
    const clock = new FakeClock();
    const h: Harness = startBroker({ maxPacketSize: 8192, maxSessionExpiry: 60, connectTimeoutMs: 5000 }, clock);
    const all: FuzzConn[] = [];
    const open = (version: 4 | 5) => new FuzzConn(h.stream(), version);
    const { roundTrip } = await healthyPair(() => h.client(4));

    // Warm up (JIT, pools) before taking the baseline.
    await fuzz(prng(1), corpus, 2000, 16, open, () => {}, all);
    for (const c of all) c.stream.destroy();
    all.length = 0;
    clock.advance(120_000);
    await sleep(20);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;

    const t0 = performance.now();
    let nextRoundTrip = 10_000;
    let rt = 2;
    const stats = await fuzz(r, corpus, 100_000, 64, open, (sent) => {
      if (sent >= nextRoundTrip) {
        nextRoundTrip += 10_000;
        clock.advance(1_000); // timers fire along the way: connect timeouts, keepalives, expiry
      }
    }, all);
    const fuzzMs = performance.now() - t0;

    expect(stats.writeErrors).toEqual([]);
    await roundTrip(rt++);
    // Past 1.5 × the largest keepalive a fuzzed CONNECT can ask for (65535 s).
    const { alive, closedByTime } = await checkWorksOrClosed(h.broker, all, 28 * 3600_000, async () => clock.advance(28 * 3600_000));
    await roundTrip(rt++);

    for (const c of all) c.stream.destroy();
    all.length = 0;
    clock.advance(120_000); // persistent fuzz sessions expire
    await sleep(50);
    await roundTrip(rt++);
    gc();
    await sleep(10);
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    const totalMs = performance.now() - t0;

    const mib = (n: number) => (n / 1048576).toFixed(1);
    console.info(
      `fuzz in-memory: ${stats.packets} packets over ${stats.connections} connections in ${(fuzzMs / 1000).toFixed(1)} s ` +
        `(${(totalMs / 1000).toFixed(1)} s with checks); ${alive} alive at the end, ${closedByTime} closed by timers; ` +
        `violations ${JSON.stringify(Object.fromEntries(h.broker.metrics.violations))}; drops ${JSON.stringify(Object.fromEntries(h.broker.metrics.drops))}; ` +
        `heap ${mib(heapBefore)} MiB → ${mib(heapAfter)} MiB; sessions left ${h.broker.sessionCount}, connections ${h.broker.connectionCount}`,
    );
    expect(escaped).toEqual([]);
    expect(stats.packets).toBeGreaterThanOrEqual(100_000);
    expect(h.broker.connectionCount).toBe(2); // the healthy pair
    expect(h.broker.sessionCount).toBe(2);
    expect(heapAfter).toBeLessThan(heapBefore + 20 * 1048576);
    await h.close();
  }, 90_000);

  it('survives 10,000 fuzz packets over real TCP sockets', async () => {
    const r = prng(0x7c9);
    const corpus = buildCorpus();
    const broker = new Broker({ maxPacketSize: 8192, maxSessionExpiry: 60, connectTimeoutMs: 1000 }, { log: silentLog });
    const listener = new TcpListener('127.0.0.1', 0, broker, silentLog);
    await listener.start();
    const { port } = listener.address;
    const sockets: net.Socket[] = [];
    const connectTcp = (): net.Socket => {
      // Writes before 'connect' are buffered by net.
      const s = net.connect({ host: '127.0.0.1', port });
      s.setNoDelay(true);
      sockets.push(s);
      return s;
    };
    try {
      const clients = [new RawClient(connectTcp(), 4), new RawClient(connectTcp(), 4)];
      let k = 0;
      const { roundTrip } = await healthyPair(() => clients[k++]!);
      const all: FuzzConn[] = [];
      const t0 = performance.now();
      const stats = await fuzz(r, corpus, 10_000, 8, (version) => new FuzzConn(connectTcp(), version), () => {}, all, 1);
      const ms = performance.now() - t0;
      expect(stats.writeErrors).toEqual([]);
      await roundTrip(2);
      // Real time: connect timeout 1 s, keepalive 1 s (closed at 1.5 s).
      const { alive, closedByTime } = await checkWorksOrClosed(broker, all, 2500, () => sleep(2500));
      await roundTrip(3);
      console.info(`fuzz tcp: ${stats.packets} packets over ${stats.connections} sockets in ${(ms / 1000).toFixed(1)} s; ${alive} alive at the end, ${closedByTime} closed by timers`);
      expect(escaped).toEqual([]);
      expect(stats.packets).toBeGreaterThanOrEqual(10_000);
    } finally {
      for (const s of sockets) s.destroy();
      await listener.stop();
      await broker.close();
    }
  }, 60_000);
});
