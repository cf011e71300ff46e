// Load for the bridge benchmark: QoS 1 publishers with a fixed window (durable ingest,
// PUBACK latency) and a raw subscriber on the cloud that counts, in order, what a bridge
// delivered (drain).
import mqtt from 'mqtt-packet';
import { RawClient, connectMany } from './mqtt-client.js';
import { OFF_SEQ, Tracker, makePayload, type DeliveryCounts } from './stamp.js';

export interface IngestResult {
  messages: number;
  seconds: number;
  msgsPerSec: number;
  /** PUBACK latency in ms: publish written → PUBACK read. */
  p50: number;
  p99: number;
  max: number;
}

export interface IngestOptions {
  publishers: number;
  perPublisher: number;
  window: number;
  runId: number;
  /** Publisher i publishes on `${topicPrefix}${i}`. */
  topicPrefix: string;
  timeoutMs: number;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** One publisher: a PUBLISH template with fixed offsets, a window of packet ids 1..window. */
class WindowedPublisher {
  private readonly frame: Buffer;
  private readonly idOff: number;
  private readonly payOff: number;
  private readonly sentAt: Float64Array;
  private next = 0;
  private ready: number[] = [];

  constructor(
    private readonly client: RawClient,
    topic: string,
    payload: Buffer,
    private readonly o: IngestOptions,
    onAck: (latencyMs: number) => void,
  ) {
    this.frame = mqtt.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain: false, dup: false }, { protocolVersion: 4 });
    this.payOff = this.frame.length - payload.length;
    this.idOff = this.payOff - 2;
    this.sentAt = new Float64Array(o.window + 1);
    client.onPuback = (id) => {
      onAck(performance.now() - this.sentAt[id]!);
      if (this.next + this.ready.length < o.perPublisher) this.ready.push(id);
    };
    // PUBLISHes released by the PUBACKs of one read go out as one write.
    client.onBatchEnd = () => {
      if (this.ready.length === 0) return;
      const ids = this.ready;
      this.ready = [];
      this.send(ids);
    };
  }

  start(): void {
    this.send(Array.from({ length: Math.min(this.o.window, this.o.perPublisher) }, (_, k) => k + 1));
  }

  private send(ids: number[]): void {
    const { frame } = this;
    const buf = Buffer.allocUnsafe(ids.length * frame.length);
    const now = performance.now();
    let off = 0;
    for (const id of ids) {
      frame.copy(buf, off);
      buf.writeUInt16BE(id, off + this.idOff);
      buf.writeUInt32BE(this.next++, off + this.payOff + OFF_SEQ);
      this.sentAt[id] = now;
      off += frame.length;
    }
    this.client.write(buf);
  }
}

/**
 * `publishers` raw MQTT 3.1.1 clients each publish `perPublisher` 64-byte QoS 1 messages,
 * keeping `window` unacknowledged: a PUBACK releases the next PUBLISH. The payload carries
 * run id, publisher index and sequence number (bench/lib/stamp.ts).
 */
export async function ingest(port: number, o: IngestOptions): Promise<IngestResult> {
  const clients = await connectMany(o.publishers, 16, (i) => ({ port, clientId: `bridge-bench-pub-${i}`, protocol: 4, timeoutMs: 5000 }));
  const total = o.publishers * o.perPublisher;
  const latencies = new Float64Array(total);
  let acked = 0;
  let tEnd = 0;
  let done!: () => void;
  let fail!: (e: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    done = resolve;
    fail = reject;
  });
  const onAck = (ms: number): void => {
    latencies[acked++] = ms;
    if (acked === total) {
      tEnd = performance.now();
      done();
    }
  };
  const pubs = clients.map((c, i) => {
    c.socket.once('close', () => {
      if (acked < total) fail(new Error(`publisher ${i} lost its connection (${c.closeReason ?? 'closed'}) after ${acked}/${total} PUBACKs`));
    });
    return new WindowedPublisher(c, `${o.topicPrefix}${i}`, makePayload(o.runId, i), o, onAck);
  });
  const timer = setTimeout(() => fail(new Error(`ingest incomplete after ${o.timeoutMs / 1000} s: ${acked}/${total} PUBACKs`)), o.timeoutMs);
  const t0 = performance.now();
  for (const p of pubs) p.start();
  try {
    await finished;
  } finally {
    clearTimeout(timer);
    await Promise.all(clients.map((c) => c.close()));
  }
  const sorted = latencies.subarray(0, acked).sort();
  const seconds = (tEnd - t0) / 1000;
  return { messages: total, seconds, msgsPerSec: total / seconds, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN };
}

export interface DrainResult {
  counts: DeliveryCounts;
  /** First to last arrival. */
  drainSeconds: number;
  /** From `since` (the cloud coming up) to the last arrival. */
  totalSeconds: number;
  msgsPerSec: number;
  /** Ended without everything arriving: nothing new for `idleMs`, or the timeout. */
  incomplete: string | undefined;
}

/**
 * A raw subscriber on the cloud's plain listener with a persistent session (QoS 0, the cloud
 * runs with `queue_qos0_messages true`): messages a bridge delivers while it reconnects after
 * the cloud's start wait in its session. Counts per publisher: lost, duplicate, out of order.
 */
export class DrainObserver {
  private client: RawClient | undefined;
  private tracker: Tracker | undefined;
  private first = 0;
  private last = 0;

  constructor(
    private readonly clientId: string,
    private readonly filter: string,
  ) {}

  /** Creates the session (subscribe, disconnect) so it exists before the cloud goes down. */
  async register(port: number): Promise<void> {
    const c = await RawClient.connect({ port, clientId: this.clientId, protocol: 4, clean: false, timeoutMs: 5000 });
    await c.subscribe(this.filter, 0, 5000);
    await c.close();
  }

  /** Reconnects to the session, counting messages of `runId`. */
  async attach(port: number, runId: number, publishers: number, perPublisher: number): Promise<void> {
    const tracker = new Tracker(runId, publishers, perPublisher);
    this.tracker = tracker;
    this.first = this.last = 0;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        this.client = await RawClient.connect({ port, clientId: this.clientId, protocol: 4, clean: false, timeoutMs: 2000 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    this.client.onPublish = (buf, start, end) => {
      if (tracker.record(buf, start, end) < 0) return;
      const now = performance.now();
      if (this.first === 0) this.first = now;
      this.last = now;
    };
  }

  /**
   * Waits until every message arrived, or nothing new came for `idleMs` after a first message
   * (or for `firstMs` before any: a bridge's reconnect delay), or `timeoutMs`.
   */
  async wait(since: number, firstMs: number, idleMs: number, timeoutMs: number): Promise<DrainResult> {
    const tracker = this.tracker!;
    const deadline = performance.now() + timeoutMs;
    let incomplete: string | undefined;
    for (;;) {
      const now = performance.now();
      if (tracker.complete) break;
      if (now > deadline) {
        incomplete = `timeout after ${timeoutMs / 1000} s`;
        break;
      }
      if (this.last === 0 ? now - since > firstMs : now - this.last > idleMs) {
        incomplete = this.last === 0 ? `nothing arrived within ${firstMs / 1000} s` : `nothing new for ${idleMs / 1000} s`;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const counts = tracker.counts();
    const drainSeconds = this.first === 0 ? NaN : (this.last - this.first) / 1000;
    return { counts, drainSeconds, totalSeconds: this.last === 0 ? NaN : (this.last - since) / 1000, msgsPerSec: counts.unique / drainSeconds, incomplete };
  }

  async detach(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }
}
