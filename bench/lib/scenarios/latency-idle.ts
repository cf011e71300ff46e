// Latency at a steady publish rate, and memory cost of idle connections.
import { connectMany, RawClient } from '../mqtt-client.js';
import { newRunId, OFF_SEQ, OFF_TIME, PAYLOAD_SIZE, Tracker } from '../stamp.js';
import {
  CpuMeter,
  nowMs,
  percentile,
  pregenerate,
  sleep,
  waitDeliveries,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from './common.js';

async function latency(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts, broker, protocol } = ctx;
  const runId = newRunId();
  const count = Math.max(1, Math.round(opts.latencyRate * opts.latencySeconds));
  const tracker = new Tracker(runId, 1, count);
  const lat = new Float64Array(count).fill(NaN);
  const notes: string[] = [];
  const clients: RawClient[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const sub = await RawClient.connect({
      port: broker.port, clientId: `${ctx.tag}-sub`, protocol, timeoutMs: opts.connectTimeoutMs,
    });
    clients.push(sub);
    await sub.subscribe('bench/latency/data', 0, opts.connectTimeoutMs);
    let lastRecv = 0;
    sub.onPublish = (buf, s, e) => {
      const before = tracker.unique;
      if (tracker.record(buf, s, e) < 0 || tracker.unique === before) return;
      const t = process.hrtime.bigint();
      lat[buf.readUInt32BE(s + OFF_SEQ)] = Number(t - buf.readBigUInt64BE(s + OFF_TIME)) / 1e6;
    };
    sub.onBatchEnd = () => void (lastRecv = nowMs());
    const pub = await RawClient.connect({
      port: broker.port, clientId: `${ctx.tag}-pub`, protocol, timeoutMs: opts.connectTimeoutMs,
    });
    clients.push(pub);
    // One template frame; each message is a fresh copy stamped at send time.
    const tpl = pregenerate('bench/latency/data', 0, runId, 0, 1, protocol).buf;
    const payOff = tpl.length - PAYLOAD_SIZE;
    let sent = 0;
    let backpressured = 0;
    const cpu = new CpuMeter(broker);
    cpu.begin();
    const start = nowMs();
    // 1 ms tick; each tick sends however many messages are due, so the average
    // rate is exact even when timers fire late.
    timer = setInterval(() => {
      const due = Math.min(count, Math.floor(((nowMs() - start) * opts.latencyRate) / 1000) + 1);
      while (sent < due && !pub.closed) {
        const b = Buffer.from(tpl);
        b.writeUInt32BE(sent, payOff + OFF_SEQ);
        b.writeBigUInt64BE(process.hrtime.bigint(), payOff + OFF_TIME);
        if (!pub.write(b)) backpressured++;
        sent++;
      }
      if (sent >= count && timer) clearInterval(timer);
    }, 1);
    const outcome = await waitDeliveries({
      startMs: start, timeoutMs: opts.latencySeconds * 1000 + opts.timeoutMs, idleMs: opts.idleMs, broker,
      isComplete: () => tracker.complete,
      publishingDone: () => sent >= count,
      lastReceiveMs: () => lastRecv,
    });
    const { brokerCpuPct, loadgenCpuPct } = cpu.end();
    if (outcome !== 'complete') notes.push(`stopped: ${outcome}`);
    if (backpressured) notes.push(`publisher hit backpressure ${backpressured} times`);
    const got = lat.filter((x) => !Number.isNaN(x)).sort();
    const counts = tracker.counts();
    return {
      metrics: [
        { key: 'p50 ms', value: percentile(got, 50), higherIsBetter: false },
        { key: 'p99 ms', value: percentile(got, 99), higherIsBetter: false },
        { key: 'max ms', value: got.length ? got[got.length - 1]! : NaN, higherIsBetter: false },
      ],
      counts, brokerCpuPct, loadgenCpuPct, notes,
    };
  } finally {
    if (timer) clearInterval(timer);
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function idleConnections(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts, broker, protocol } = ctx;
  const n = opts.idleConnections;
  const notes: string[] = [];
  let clients: RawClient[] = [];
  try {
    await sleep(500);
    const before = broker.rssKiB();
    const cpu = new CpuMeter(broker);
    cpu.begin();
    const t0 = nowMs();
    clients = await connectMany(n, 100, (i) => ({
      port: broker.port, clientId: `${ctx.tag}-idle${i}`, protocol, keepalive: 60, timeoutMs: opts.connectTimeoutMs,
    }));
    const connectSecs = (nowMs() - t0) / 1000;
    const { brokerCpuPct, loadgenCpuPct } = cpu.end();
    await sleep(2000);
    const after = broker.rssKiB();
    const dropped = clients.filter((c) => c.closed).length;
    if (dropped) notes.push(`${dropped} connections closed by broker during settle`);
    notes.push(`RSS ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MiB, connect ${(n / connectSecs).toFixed(0)} conn/s`);
    return {
      metrics: [
        { key: 'KiB/conn', value: (after - before) / n, higherIsBetter: false },
        { key: 'RSS MiB after', value: after / 1024, higherIsBetter: false },
      ],
      counts: null, brokerCpuPct, loadgenCpuPct, notes,
    };
  } finally {
    // Close in batches so the broker is not hit by 5,000 simultaneous FINs.
    for (let i = 0; i < clients.length; i += 500) {
      await Promise.all(clients.slice(i, i + 500).map((c) => c.close(2000)));
    }
  }
}

export const latencyScenario: Scenario = {
  id: 'latency',
  title: 'latency at a steady rate (1 pub → 1 sub, QoS 0)',
  run: latency,
};
export const idleScenario: Scenario = {
  id: 'idle-conns',
  title: 'idle connections (RSS per connection)',
  run: idleConnections,
};
