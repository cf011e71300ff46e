/**
 * Frames whose length is known from their first bytes: fixed-length records, length-prefixed
 * packets, Modbus RTU responses (length from the function code). Optional sync marker and
 * check (CRC). Resynchronisation is the classic slide-by-one: a sync miss, an impossible
 * length or a failed check drops one byte and tries again at the next offset, so a valid
 * frame behind garbage is always found and the buffer never holds more than maxLength.
 *
 * A failed check is reported once per bad frame: sliding through its own bytes, the framer
 * finds more candidates (a Modbus answer "01 03 04 01 03 00 02 crc" read from its second byte
 * is "03 04 01 …", a plausible header) whose checks fail too; those bytes are garbage, not more
 * corrupted frames, so checksum_failures counts what the wire carried (a bad answer was
 * counted two or three times).
 */
import type { FrameCheck, FrameSink } from '../framer.js';
import { BufferedFramer } from './buffered-framer.js';

export interface HeaderFramerOptions {
  /** Bytes needed before frameLength can be asked (≥ sync length). */
  headerLength: number;
  /** Whole frame length from its header, or -1 when the header is impossible. */
  frameLength(header: Buffer): number;
  maxLength: number;
  sync?: Buffer;
  check?: FrameCheck;
}

export class HeaderFramer extends BufferedFramer {
  private readonly sync: Buffer | undefined;
  /** Bytes at the front that belong to the last frame whose check failed (already counted). */
  private failedSpan = 0;

  constructor(
    private readonly o: HeaderFramerOptions,
    sink: FrameSink,
  ) {
    super(o.maxLength, sink);
    this.sync = o.sync && o.sync.length > 0 ? o.sync : undefined;
    const headerLength = Math.max(o.headerLength, this.sync?.length ?? 0, 1);
    if (o.maxLength < headerLength) throw new RangeError(`maxLength ${o.maxLength} is shorter than the header (${headerLength})`);
    this.o = { ...o, headerLength };
  }

  private drop(n: number, reason: 'garbage' | 'checksum' | 'partial'): void {
    this.sink.discard(n, reason);
    this.buf.consume(n);
    this.failedSpan = Math.max(0, this.failedSpan - n);
  }

  protected override cleared(): void {
    this.failedSpan = 0;
  }

  protected drain(): void {
    const { headerLength, maxLength } = this.o;
    for (;;) {
      if (this.sync && !this.alignToSync()) return;
      if (this.buf.length < headerLength) return;
      const total = this.o.frameLength(this.buf.bytes.subarray(0, headerLength));
      if (!(total >= headerLength && total <= maxLength)) {
        this.drop(1, 'garbage');
        continue;
      }
      if (this.buf.length < total) return;
      const frame = this.buf.copy(total);
      if (this.o.check && !this.o.check(frame)) {
        if (this.failedSpan > 0) {
          this.drop(1, 'garbage'); // inside a bad frame already counted
        } else {
          this.failedSpan = total;
          this.drop(1, 'checksum');
        }
        continue;
      }
      this.buf.consume(total);
      this.failedSpan = 0;
      this.sink.frame(frame);
    }
  }

  /** Drops bytes before the sync marker; false when more bytes are needed to find it. */
  private alignToSync(): boolean {
    const sync = this.sync!;
    const at = this.buf.indexOf(sync, 0);
    if (at === 0) return true;
    if (at > 0) {
      this.drop(at, 'garbage');
      return true;
    }
    // Keep a possible marker prefix at the end.
    const keep = Math.min(this.buf.length, sync.length - 1);
    if (this.buf.length > keep) this.drop(this.buf.length - keep, 'garbage');
    return false;
  }

  /**
   * The line went quiet with a frame still incomplete: the candidate at the front is wrong (a
   * garbage byte that looked like a header with a long length) or truly cut short. Slide by one
   * and rescan, so a complete frame behind a bad header is still delivered; what cannot
   * complete is dropped as partial.
   */
  idle(): void {
    while (this.buf.length > 0) {
      this.drop(1, 'partial');
      this.drain();
    }
  }
}
