/**
 * Fuzzing the broker with random and mutated packets (seeded, so a failure replays):
 * valid encodings of every packet type, both protocol versions, then bit flips,
 * truncation, wrong length fields, spliced and random bytes, over many connections.
 * Nothing may escape as an exception, every connection must keep working or be closed,
 * a healthy client must still get through, and the memory must come back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prng } from '../helpers/prng.js';
import net from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startBroker, silentLog, type Harness } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RawClient } from '../helpers/raw-client.js';
import { Broker } from '../../src/broker/broker.js';
import { TcpListener } from '../../src/broker/tcp-listener.js';
import type { Connection } from '../../src/broker/connection.js';
import { buildCorpus, fuzz, FuzzConn } from '../helpers/mqtt-fuzz.js';

Error.stackTraceLimit = 60;
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
