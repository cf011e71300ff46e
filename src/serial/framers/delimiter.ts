/**
 * Frames end at a delimiter (e.g. "\n", "\r\n"); the delimiter is not part of the frame.
 * A frame longer than maxLength is skipped up to the next delimiter and counted, unlike
 * serialport's DelimiterParser, whose buffer grows without bound on a line that never ends.
 */
import type { Framer, FrameSink } from '../framer.js';
import { ByteBuffer } from './byte-buffer.js';

export class DelimiterFramer implements Framer {
  private readonly buf: ByteBuffer;
  /** Inside an overlong frame: drop bytes until the next delimiter. */
  private skipping = false;
  /** Bytes before this index hold no delimiter start. */
  private searched = 0;

  constructor(
    private readonly delimiter: Buffer,
    maxLength: number,
    private readonly sink: FrameSink,
  ) {
    if (delimiter.length === 0) throw new RangeError('delimiter must not be empty');
    this.buf = new ByteBuffer(maxLength + delimiter.length);
  }

  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): void {
    let from = 0;
    while (from < chunk.length) {
      from += this.buf.append(chunk, from);
      this.drain();
    }
  }

  private drain(): void {
    const d = this.delimiter.length;
    for (;;) {
      const at = this.buf.indexOf(this.delimiter, this.searched);
      if (at >= 0) {
        if (this.skipping) {
          this.sink.discard(at + d, 'overlong');
          this.skipping = false;
        } else {
          this.sink.frame(this.buf.copy(at));
        }
        this.buf.consume(at + d);
        this.searched = 0;
        continue;
      }
      // Keep the last d-1 bytes: they may be the start of a delimiter split across chunks.
      this.searched = Math.max(0, this.buf.length - d + 1);
      if (this.buf.free === 0) {
        const drop = this.buf.length - (d - 1);
        this.sink.discard(drop, 'overlong');
        this.buf.consume(drop);
        this.searched = 0;
        this.skipping = true;
      }
      return;
    }
  }

  idle(): void {
    if (this.buf.length === 0) return;
    this.sink.discard(this.buf.clear(), this.skipping ? 'overlong' : 'partial');
    this.skipping = false;
    this.searched = 0;
  }

  reset(): void {
    const n = this.buf.clear();
    if (n > 0) this.sink.discard(n, 'reset');
    this.skipping = false;
    this.searched = 0;
  }
}
