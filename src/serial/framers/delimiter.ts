/**
 * Frames end at a delimiter (e.g. "\n", "\r\n"); the delimiter is not part of the frame.
 * A frame longer than maxLength is skipped up to the next delimiter and counted, unlike
 * serialport's DelimiterParser, whose buffer grows without bound on a line that never ends.
 */
import type { FrameSink } from '../framer.js';
import { BufferedFramer } from './buffered-framer.js';

export class DelimiterFramer extends BufferedFramer {
  /** Inside an overlong frame: drop bytes until the next delimiter. */
  private skipping = false;
  /** Bytes before this index hold no delimiter start. */
  private searched = 0;

  constructor(
    private readonly delimiter: Buffer,
    maxLength: number,
    sink: FrameSink,
  ) {
    super(maxLength + delimiter.length, sink);
    if (delimiter.length === 0) throw new RangeError('delimiter must not be empty');
  }

  protected drain(): void {
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

  protected override cleared(): void {
    this.skipping = false;
    this.searched = 0;
  }
}
