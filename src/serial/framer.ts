/**
 * Framers turn a byte stream into frames. They are pure (no clock, no I/O), never throw
 * on wire garbage, and never hold more than their bound: bytes that cannot become a frame
 * are dropped and reported, and the framer resynchronises on the next frame boundary.
 *
 *   port bytes ─▶ push(chunk) ─▶ sink.frame(frame)        one call per complete frame
 *                              └▶ sink.discard(n, reason)  bytes that were not a frame
 *   no byte for idle_ms ─▶ idle()   (the host's timer; ends a gap frame, drops a half frame)
 */

export type DiscardReason =
  /** A frame longer than the framer's bound; skipped up to the next boundary. */
  | 'overlong'
  /** Bytes before a sync marker, or a header whose length field is impossible. */
  | 'garbage'
  /** A frame whose check (CRC, checksum) failed; the framer slides one byte and retries. */
  | 'checksum'
  /** A partial frame dropped because the line went quiet (a pulled cable, a reset device). */
  | 'partial'
  /** Bytes buffered when the port closed. */
  | 'reset';

export interface FrameSink {
  frame(frame: Buffer): void;
  discard(bytes: number, reason: DiscardReason): void;
}

export interface Framer {
  /** Feeds bytes; calls the sink synchronously. Never throws. */
  push(chunk: Buffer): void;
  /** The line has been quiet for the idle timeout: end (gap framer) or drop (others) the partial frame. */
  idle(): void;
  /** Drops whatever is buffered (reported as 'reset'), e.g. when the port closes. */
  reset(): void;
  /** Bytes held now; never more than the framer's bound. */
  readonly buffered: number;
}

/** Validates a candidate frame (e.g. its CRC); a failure makes the framer slide by one byte. */
export type FrameCheck = (frame: Buffer) => boolean;

/** How a driver wants its bytes framed; the host builds the framer. */
export type FramingSpec =
  | { type: 'delimiter'; delimiter: Buffer; maxLength: number; idleMs?: number }
  | { type: 'fixed'; length: number; sync?: Buffer; check?: FrameCheck; idleMs?: number }
  | {
      type: 'length-prefixed';
      sync?: Buffer;
      /** Offset of the length field from the frame start. */
      lengthOffset: number;
      lengthSize: 1 | 2;
      littleEndian?: boolean;
      /** Whole frame = lengthOffset + lengthSize + value + adjust (e.g. +2 for a trailing CRC). */
      adjust?: number;
      maxLength: number;
      check?: FrameCheck;
      idleMs?: number;
    }
  | { type: 'gap'; gapMs: number; maxLength: number }
  | { type: 'custom'; create(sink: FrameSink): Framer; idleMs?: number };

/** The idle timeout the host arms after bytes arrive (undefined: none). */
export function idleTimeoutOf(spec: FramingSpec): number | undefined {
  return spec.type === 'gap' ? spec.gapMs : spec.idleMs;
}
