// Payload stamping and delivery accounting (lost / duplicate / out-of-order).
//
// Every benchmark payload is PAYLOAD_SIZE bytes laid out as:
//   [0..3]  run id (u32 BE)   - messages from another run are counted as "stray"
//   [4..5]  publisher index (u16 BE)
//   [6..9]  sequence number (u32 BE), 0-based per publisher
//   [10..17] send time, process.hrtime.bigint() in ns (u64 BE), latency scenario only
//   [18..]  zero padding
export const PAYLOAD_SIZE = 64;
export const OFF_RUN = 0;
export const OFF_PUB = 4;
export const OFF_SEQ = 6;
export const OFF_TIME = 10;

let runCounter = (process.pid * 7919) >>> 0;
/** A fresh id per measurement, so late messages from an earlier one are ignored. */
export function newRunId(): number {
  runCounter = (runCounter + 0x9e3779b1) >>> 0;
  return runCounter;
}

export function makePayload(runId: number, pub: number): Buffer {
  const b = Buffer.alloc(PAYLOAD_SIZE);
  b.writeUInt32BE(runId, OFF_RUN);
  b.writeUInt16BE(pub, OFF_PUB);
  return b;
}

export interface DeliveryCounts {
  expected: number;
  received: number; // every matching delivery, duplicates included
  unique: number;
  lost: number;
  dup: number;
  ooo: number;
  stray: number; // wrong run id or out-of-range publisher/seq
}

/**
 * Tracks what one subscriber received from `publishers` publishers that each
 * send `perPublisher` messages. A message is:
 *  - duplicate if the same (publisher, seq) was already seen;
 *  - out-of-order if its seq is below the highest seq already seen from that
 *    publisher (and it is not a duplicate);
 *  - lost if never seen by the end of the measurement.
 */
export class Tracker {
  private readonly seen: Uint8Array[];
  private readonly maxSeq: Int32Array;
  received = 0;
  unique = 0;
  dup = 0;
  ooo = 0;
  stray = 0;

  constructor(
    private readonly runId: number,
    private readonly publishers: number,
    private readonly perPublisher: number,
  ) {
    this.seen = Array.from({ length: publishers }, () => new Uint8Array(perPublisher));
    this.maxSeq = new Int32Array(publishers).fill(-1);
  }

  get expected(): number {
    return this.publishers * this.perPublisher;
  }

  get complete(): boolean {
    return this.unique >= this.expected;
  }

  /** Record the payload found in buf[start, end). Returns the publisher index or -1 if stray. */
  record(buf: Buffer, start: number, end: number): number {
    if (end - start < OFF_TIME || buf.readUInt32BE(start + OFF_RUN) !== this.runId) {
      this.stray++;
      return -1;
    }
    const pub = buf.readUInt16BE(start + OFF_PUB);
    const seq = buf.readUInt32BE(start + OFF_SEQ);
    if (pub >= this.publishers || seq >= this.perPublisher) {
      this.stray++;
      return -1;
    }
    this.received++;
    const seen = this.seen[pub]!;
    if (seen[seq]) {
      this.dup++;
      return pub;
    }
    seen[seq] = 1;
    this.unique++;
    if (seq < this.maxSeq[pub]!) this.ooo++;
    else this.maxSeq[pub] = seq;
    return pub;
  }

  counts(): DeliveryCounts {
    return {
      expected: this.expected,
      received: this.received,
      unique: this.unique,
      lost: this.expected - this.unique,
      dup: this.dup,
      ooo: this.ooo,
      stray: this.stray,
    };
  }
}

export function sumCounts(list: DeliveryCounts[]): DeliveryCounts {
  const out: DeliveryCounts = { expected: 0, received: 0, unique: 0, lost: 0, dup: 0, ooo: 0, stray: 0 };
  for (const c of list) {
    out.expected += c.expected;
    out.received += c.received;
    out.unique += c.unique;
    out.lost += c.lost;
    out.dup += c.dup;
    out.ooo += c.ooo;
    out.stray += c.stray;
  }
  return out;
}
