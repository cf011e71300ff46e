/**
 * What every bounded framer shares: one fixed-capacity buffer, a push loop that appends as
 * much of a chunk as fits and lets the framer take frames out before appending the rest, and
 * a reset that reports what it threw away.
 */
import type { Framer, FrameSink } from '../framer.js';
import { ByteBuffer } from './byte-buffer.js';

export abstract class BufferedFramer implements Framer {
  protected readonly buf: ByteBuffer;

  protected constructor(
    capacity: number,
    protected readonly sink: FrameSink,
  ) {
    this.buf = new ByteBuffer(capacity);
  }

  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): void {
    let from = 0;
    while (from < chunk.length) {
      from += this.buf.append(chunk, from);
      this.drain(from < chunk.length);
    }
  }

  /** Takes complete frames out of the buffer; `more`: the chunk has bytes that did not fit yet. */
  protected abstract drain(more: boolean): void;

  abstract idle(): void;

  reset(): void {
    const n = this.buf.clear();
    if (n > 0) this.sink.discard(n, 'reset');
    this.cleared();
  }

  /** Per-framer state to forget along with the buffer. */
  protected cleared(): void {}
}
