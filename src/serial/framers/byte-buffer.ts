/** A fixed-capacity byte buffer: the one place a framer keeps bytes, so its bound is its capacity. */
export class ByteBuffer {
  readonly bytes: Buffer;
  length = 0;

  constructor(readonly capacity: number) {
    this.bytes = Buffer.allocUnsafe(capacity);
  }

  get free(): number {
    return this.capacity - this.length;
  }

  /** Copies as much of chunk[from..] as fits; returns how many bytes were taken. */
  append(chunk: Buffer, from: number): number {
    const n = Math.min(this.free, chunk.length - from);
    chunk.copy(this.bytes, this.length, from, from + n);
    this.length += n;
    return n;
  }

  /** A copy of the first n bytes (frames outlive the buffer's reuse). */
  copy(n: number, start = 0): Buffer {
    return Buffer.from(this.bytes.subarray(start, start + n));
  }

  /** Removes the first n bytes. */
  consume(n: number): void {
    if (n >= this.length) {
      this.length = 0;
      return;
    }
    this.bytes.copyWithin(0, n, this.length);
    this.length -= n;
  }

  /** Index of `needle` at or after `from` in the held bytes, or -1. */
  indexOf(needle: Buffer, from: number): number {
    return this.bytes.subarray(0, this.length).indexOf(needle, from);
  }

  clear(): number {
    const n = this.length;
    this.length = 0;
    return n;
  }
}
