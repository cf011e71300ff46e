// Shared scenario types and helpers.
import mqtt from 'mqtt-packet';
import type { QoS } from 'mqtt-packet';
import type { BrokerProcess } from '../brokers.js';
import type { ProtocolVersion } from '../mqtt-client.js';
import { makePayload, OFF_SEQ, PAYLOAD_SIZE, type DeliveryCounts } from '../stamp.js';

export interface ScenarioOptions {
  fanInMessages: number; // total across the 10 publishers
  fanInPublishers: number;
  qos1Window: number;
  fanOutMessages: number; // messages published; deliveries = x subscribers
  fanOutSubscribers: number;
  latencyRate: number; // msg/s
  latencySeconds: number;
  idleConnections: number;
  timeoutMs: number; // max wait for deliveries in one measurement
  idleMs: number; // stop early when nothing arrives this long after publishing ended
  connectTimeoutMs: number;
}

export interface ScenarioContext {
  broker: BrokerProcess;
  protocol: ProtocolVersion;
  opts: ScenarioOptions;
  /** Unique per measurement; used in client ids. */
  tag: string;
}

export interface Metric {
  key: string; // row label, e.g. "msgs/s"
  value: number;
  higherIsBetter: boolean;
}

export interface ScenarioResult {
  metrics: Metric[];
  counts: DeliveryCounts | null;
  brokerCpuPct: number | null;
  loadgenCpuPct: number | null;
  notes: string[];
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const nowMs = () => performance.now();

/**
 * All `count` PUBLISH packets of one publisher, back to back in one buffer, so a
 * publisher can write large contiguous slices. For QoS > 0 the packet id of
 * message seq is (seq % 65535) + 1.
 */
export interface PublishStream {
  buf: Buffer;
  frameLen: number;
  count: number;
  slice(from: number, to: number): Buffer;
}

export function pregenerate(
  topic: string,
  qos: QoS,
  runId: number,
  pub: number,
  count: number,
  protocol: ProtocolVersion,
): PublishStream {
  const payload = makePayload(runId, pub);
  const template = mqtt.generate(
    { cmd: 'publish', topic, qos, dup: false, retain: false, payload, messageId: qos > 0 ? 1 : undefined },
    { protocolVersion: protocol },
  );
  const payOff = template.length - PAYLOAD_SIZE;
  let hdr = 1;
  while ((template[hdr]! & 0x80) !== 0) hdr++;
  hdr++;
  const idOff = hdr + 2 + template.readUInt16BE(hdr);
  const frameLen = template.length;
  const buf = Buffer.allocUnsafe(frameLen * count);
  for (let seq = 0, off = 0; seq < count; seq++, off += frameLen) {
    template.copy(buf, off);
    buf.writeUInt32BE(seq, off + payOff + OFF_SEQ);
    if (qos > 0) buf.writeUInt16BE((seq % 65535) + 1, off + idOff);
  }
  return { buf, frameLen, count, slice: (from, to) => buf.subarray(from * frameLen, to * frameLen) };
}

/** Samples broker and load-generator CPU between begin() and end(). */
export class CpuMeter {
  private t0 = 0;
  private b0 = 0;
  private l0: NodeJS.CpuUsage = { user: 0, system: 0 };
  constructor(private readonly broker: BrokerProcess) {}
  begin(): void {
    this.t0 = nowMs();
    this.b0 = this.safeTicks();
    this.l0 = process.cpuUsage();
  }
  end(): { brokerCpuPct: number | null; loadgenCpuPct: number } {
    const wall = Math.max(1, nowMs() - this.t0);
    const b1 = this.safeTicks();
    const l = process.cpuUsage(this.l0);
    return {
      brokerCpuPct: b1 >= 0 && this.b0 >= 0 ? ((b1 - this.b0) * 10 * 100) / wall : null,
      loadgenCpuPct: ((l.user + l.system) / 1000 / wall) * 100,
    };
  }
  private safeTicks(): number {
    try {
      return this.broker.cpuTicks();
    } catch {
      return -1;
    }
  }
}

export interface WaitOptions {
  startMs: number;
  timeoutMs: number;
  idleMs: number;
  isComplete: () => boolean;
  publishingDone: () => boolean;
  lastReceiveMs: () => number;
  broker: BrokerProcess;
}

/** Poll (every 20 ms, bounded by timeoutMs) until complete, idle, timeout or broker death. */
export async function waitDeliveries(w: WaitOptions): Promise<'complete' | 'idle' | 'timeout' | 'broker-exited'> {
  let pubDoneAt = -1;
  for (;;) {
    if (w.isComplete()) return 'complete';
    const t = nowMs();
    if (!w.broker.alive) return 'broker-exited';
    if (t - w.startMs > w.timeoutMs) return 'timeout';
    if (w.publishingDone()) {
      if (pubDoneAt < 0) pubDoneAt = t;
      if (t - Math.max(pubDoneAt, w.lastReceiveMs()) > w.idleMs) return 'idle';
    }
    await sleep(20);
  }
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}
