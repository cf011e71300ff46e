/**
 * Inter-byte timeout framing: a frame is whatever arrived before the line went quiet
 * (the host calls idle() after gapMs without bytes). A stream that never pauses cannot be
 * framed: past maxLength the bytes are dropped as overlong until the next gap.
 */
import type { Framer, FrameSink } from '../framer.js';
import { ByteBuffer } from './byte-buffer.js';

export class GapFramer implements Framer {
  private readonly buf: ByteBuffer;
  private overflowed = false;

  constructor(
    maxLength: number,
    private readonly sink: FrameSink,
  ) {
    this.buf = new ByteBuffer(maxLength);
  }

  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): void {
    let from = 0;
    while (from < chunk.length) {
      from += this.buf.append(chunk, from);
      if (this.buf.free === 0 && from < chunk.length) {
        this.overflowed = true;
        this.sink.discard(this.buf.clear(), 'overlong');
      }
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

  reset(): void {
    const n = this.buf.clear();
    if (n > 0) this.sink.discard(n, 'reset');
    this.overflowed = false;
  }
}
