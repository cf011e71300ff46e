// Throughput scenarios: fan-in (QoS 0 / QoS 1 windowed) and fan-out (QoS 0).
import type { QoS } from 'mqtt-packet';
import { connectMany, RawClient, writePuback } from '../mqtt-client.js';
import { newRunId, sumCounts, Tracker } from '../stamp.js';
import {
  CpuMeter,
  nowMs,
  pregenerate,
  waitDeliveries,
  type PublishStream,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from './common.js';

const CHUNK_FRAMES = 1024; // frames per write() for QoS 0 publishers (~80 KiB)

/** Write a whole QoS 0 stream, one chunk at a time, waiting for 'drain' on backpressure. */
function pumpQos0(c: RawClient, s: PublishStream, onFirst: () => void, onDone: () => void): void {
  let seq = 0;
  const pump = () => {
    while (seq < s.count && !c.closed) {
      if (seq === 0) onFirst();
      const next = Math.min(s.count, seq + CHUNK_FRAMES);
      const ok = c.write(s.slice(seq, next));
      seq = next;
      if (!ok) {
        c.socket.once('drain', pump);
        return;
      }
    }
    onDone();
  };
  pump();
}

/** Keep at most `window` unacknowledged QoS 1 PUBLISHes outstanding. */
function pumpQos1(c: RawClient, s: PublishStream, window: number, onDone: () => void): { unexpectedAcks: () => number } {
  const inflight = new Uint8Array(65536);
  let inflightCount = 0;
  let sent = 0;
  let acked = 0;
  let unexpected = 0;
  const fill = () => {
    const k = Math.min(window - inflightCount, s.count - sent);
    if (k <= 0) return;
    for (let i = sent; i < sent + k; i++) inflight[(i % 65535) + 1] = 1;
    inflightCount += k;
    c.write(s.slice(sent, sent + k));
    sent += k;
  };
  c.onPuback = (id) => {
    if (inflight[id]) {
      inflight[id] = 0;
      inflightCount--;
      if (++acked === s.count) onDone();
    } else unexpected++;
  };
  c.onBatchEnd = fill;
  fill();
  return { unexpectedAcks: () => unexpected };
}

async function fanIn(ctx: ScenarioContext, qos: QoS): Promise<ScenarioResult> {
  const { opts, broker, protocol } = ctx;
  const pubs = opts.fanInPublishers;
  const per = Math.ceil(opts.fanInMessages / pubs);
  const runId = newRunId();
  const tracker = new Tracker(runId, pubs, per);
  const notes: string[] = [];
  const clients: RawClient[] = [];
  try {
    const sub = await RawClient.connect({
      port: broker.port, clientId: `${ctx.tag}-sub`, protocol, timeoutMs: opts.connectTimeoutMs,
    });
    clients.push(sub);
    await sub.subscribe('bench/+/data', qos, opts.connectTimeoutMs);
    let lastRecv = 0;
    let ackIds = new Uint16Array(4096);
    let ackN = 0;
    sub.onPublish = (buf, s, e, q, id) => {
      tracker.record(buf, s, e);
      if (q > 0) {
        if (ackN === ackIds.length) {
          const bigger = new Uint16Array(ackIds.length * 2);
          bigger.set(ackIds);
          ackIds = bigger;
        }
        ackIds[ackN++] = id;
      }
    };
    sub.onBatchEnd = () => {
      lastRecv = nowMs();
      if (ackN > 0) {
        const out = Buffer.allocUnsafe(ackN * 4);
        for (let i = 0; i < ackN; i++) writePuback(out, i * 4, ackIds[i]!);
        ackN = 0;
        sub.write(out);
      }
    };
    const pubClients = await connectMany(pubs, pubs, (i) => ({
      port: broker.port, clientId: `${ctx.tag}-pub${i}`, protocol, timeoutMs: opts.connectTimeoutMs,
    }));
    clients.push(...pubClients);
    const streams = pubClients.map((_, i) => pregenerate(`bench/${i}/data`, qos, runId, i, per, protocol));
    const window = Math.min(opts.qos1Window, ...pubClients.map((c) => c.receiveMaximum));
    if (qos > 0 && window < opts.qos1Window) notes.push(`window capped to broker receive maximum ${window}`);

    const cpu = new CpuMeter(broker);
    let done = 0;
    cpu.begin();
    const start = nowMs();
    const unexpected = pubClients.map((c, i) =>
      qos === 0
        ? (pumpQos0(c, streams[i]!, () => {}, () => done++), () => 0)
        : pumpQos1(c, streams[i]!, window, () => done++).unexpectedAcks,
    );
    const outcome = await waitDeliveries({
      startMs: start, timeoutMs: opts.timeoutMs, idleMs: opts.idleMs, broker,
      isComplete: () => tracker.complete && (qos === 0 || done === pubs),
      publishingDone: () => done === pubs,
      lastReceiveMs: () => lastRecv,
    });
    const { brokerCpuPct, loadgenCpuPct } = cpu.end();
    if (outcome !== 'complete') notes.push(`stopped: ${outcome}`);
    const badAcks = unexpected.reduce((a, f) => a + f(), 0);
    if (badAcks) notes.push(`${badAcks} unexpected PUBACKs`);
    if (qos > 0 && done < pubs) notes.push(`${pubs - done}/${pubs} publishers did not get all PUBACKs`);
    const closedEarly = clients.filter((c) => c.closed).length;
    if (closedEarly) notes.push(`${closedEarly} client connections closed by broker`);
    const counts = tracker.counts();
    if (counts.stray) notes.push(`${counts.stray} stray messages`);
    const secs = Math.max(1e-6, (lastRecv - start) / 1000);
    return {
      metrics: [{ key: 'msgs/s', value: counts.unique / secs, higherIsBetter: true }],
      counts, brokerCpuPct, loadgenCpuPct, notes,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function fanOut(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts, broker, protocol } = ctx;
  const runId = newRunId();
  const m = opts.fanOutMessages;
  const trackers: Tracker[] = [];
  const notes: string[] = [];
  const clients: RawClient[] = [];
  try {
    const subs = await connectMany(opts.fanOutSubscribers, 50, (i) => ({
      port: broker.port, clientId: `${ctx.tag}-sub${i}`, protocol, timeoutMs: opts.connectTimeoutMs,
    }));
    clients.push(...subs);
    let lastRecv = 0;
    for (const s of subs) {
      const t = new Tracker(runId, 1, m);
      trackers.push(t);
      s.onPublish = (buf, st, e) => void t.record(buf, st, e);
      s.onBatchEnd = () => void (lastRecv = nowMs());
    }
    await Promise.all(subs.map((s) => s.subscribe('bench/fanout/data', 0, opts.connectTimeoutMs)));
    const pub = await RawClient.connect({
      port: broker.port, clientId: `${ctx.tag}-pub`, protocol, timeoutMs: opts.connectTimeoutMs,
    });
    clients.push(pub);
    const stream = pregenerate('bench/fanout/data', 0, runId, 0, m, protocol);
    const expected = m * subs.length;
    const unique = () => trackers.reduce((a, t) => a + t.unique, 0);
    let done = false;
    const cpu = new CpuMeter(broker);
    cpu.begin();
    const start = nowMs();
    pumpQos0(pub, stream, () => {}, () => void (done = true));
    const outcome = await waitDeliveries({
      startMs: start, timeoutMs: opts.timeoutMs, idleMs: opts.idleMs, broker,
      isComplete: () => unique() >= expected,
      publishingDone: () => done,
      lastReceiveMs: () => lastRecv,
    });
    const { brokerCpuPct, loadgenCpuPct } = cpu.end();
    if (outcome !== 'complete') notes.push(`stopped: ${outcome}`);
    const closedEarly = clients.filter((c) => c.closed).length;
    if (closedEarly) notes.push(`${closedEarly} client connections closed by broker`);
    const counts = sumCounts(trackers.map((t) => t.counts()));
    if (counts.stray) notes.push(`${counts.stray} stray messages`);
    const secs = Math.max(1e-6, (lastRecv - start) / 1000);
    return {
      metrics: [{ key: 'deliveries/s', value: counts.unique / secs, higherIsBetter: true }],
      counts, brokerCpuPct, loadgenCpuPct, notes,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

export const fanInQos0: Scenario = {
  id: 'fanin-qos0',
  title: 'fan-in QoS 0 (10 pub → 1 sub, bench/+/data)',
  run: (ctx) => fanIn(ctx, 0),
};
export const fanInQos1: Scenario = {
  id: 'fanin-qos1',
  title: 'fan-in QoS 1, window 64',
  run: (ctx) => fanIn(ctx, 1),
};
export const fanOutQos0: Scenario = {
  id: 'fanout-qos0',
  title: 'fan-out QoS 0 (1 pub → 100 subs)',
  run: fanOut,
};
