/** Builds the framer a driver's FramingSpec asks for. */
import type { Framer, FrameSink, FramingSpec } from '../framer.js';
import { DelimiterFramer } from './delimiter.js';
import { GapFramer } from './gap.js';
import { HeaderFramer } from './header.js';

export { DelimiterFramer, GapFramer, HeaderFramer };

export function createFramer(spec: FramingSpec, sink: FrameSink): Framer {
  switch (spec.type) {
    case 'delimiter':
      return new DelimiterFramer(spec.delimiter, spec.maxLength, sink);
    case 'gap':
      return new GapFramer(spec.maxLength, sink);
    case 'fixed':
      return new HeaderFramer(
        { headerLength: Math.max(1, spec.sync?.length ?? 0), frameLength: () => spec.length, maxLength: spec.length, sync: spec.sync, check: spec.check },
        sink,
      );
    case 'length-prefixed': {
      const { lengthOffset, lengthSize, littleEndian = false, adjust = 0 } = spec;
      const headerLength = lengthOffset + lengthSize;
      const frameLength = (h: Buffer): number => {
        const v = lengthSize === 1 ? h[lengthOffset]! : littleEndian ? h.readUInt16LE(lengthOffset) : h.readUInt16BE(lengthOffset);
        return headerLength + v + adjust;
      };
      return new HeaderFramer({ headerLength, frameLength, maxLength: spec.maxLength, sync: spec.sync, check: spec.check }, sink);
    }
    case 'custom':
      return spec.create(sink);
  }
}
