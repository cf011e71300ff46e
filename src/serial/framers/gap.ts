/**
 * Inter-byte timeout framing: a frame is whatever arrived before the line went quiet
 * (the host calls idle() after gapMs without bytes). A stream that never pauses cannot be
 * framed: past maxLength the bytes are dropped as overlong until the next gap.
 */
import type { FrameSink } from '../framer.js';
import { BufferedFramer } from './buffered-framer.js';

export class GapFramer extends BufferedFramer {
  private overflowed = false;

  constructor(maxLength: number, sink: FrameSink) {
    super(maxLength, sink);
  }

  /** A frame ends only at a gap: a full buffer with bytes still coming is overlong. */
  protected drain(more: boolean): void {
    if (this.buf.free === 0 && more) {
      this.overflowed = true;
      this.sink.discard(this.buf.clear(), 'overlong');
    }
  }

  idle(): void {
    if (this.overflowed) {
      const n = this.buf.clear();
      if (n > 0) this.sink.discard(n, 'overlong');
      this.overflowed = false;
      return;
    }
    if (this.buf.length > 0) {
      const frame = this.buf.copy(this.buf.length);
      this.buf.clear();
      this.sink.frame(frame);
    }
  }

  protected override cleared(): void {
    this.overflowed = false;
  }
}
