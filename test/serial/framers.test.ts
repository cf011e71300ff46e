import { describe, expect, it } from 'vitest';
import type { DiscardReason, Framer, FramingSpec } from '../../src/serial/framer.js';
import { createFramer } from '../../src/serial/framers/index.js';
import { prng } from '../helpers/prng.js';

interface Outcome {
  frames: string[];
  discards: Partial<Record<DiscardReason, number>>;
  /** Largest number of bytes the framer held at any point. */
  peak: number;
  framer: Framer;
}

const b = (s: string) => Buffer.from(s, 'latin1');

function run(spec: FramingSpec, chunks: Buffer[], idleAtEnd = false): Outcome {
  const out: Outcome = { frames: [], discards: {}, peak: 0, framer: undefined as unknown as Framer };
  out.framer = createFramer(spec, {
    frame: (f) => out.frames.push(f.toString('latin1')),
    discard: (n, reason) => (out.discards[reason] = (out.discards[reason] ?? 0) + n),
  });
  for (const c of chunks) {
    out.framer.push(c);
    out.peak = Math.max(out.peak, out.framer.buffered);
  }
  if (idleAtEnd) out.framer.idle();
  return out;
}

/** Every way of cutting `input` in two, plus byte by byte: all must frame like one push. */
function splits(input: Buffer): Buffer[][] {
  const ways: Buffer[][] = [];
  for (let i = 0; i <= input.length; i++) ways.push([input.subarray(0, i), input.subarray(i)]);
  ways.push([...input].map((x) => Buffer.from([x])));
  return ways;
}

function expectSameAtEverySplit(spec: FramingSpec, input: string, expected: { frames: string[]; discards: Outcome['discards'] }, idle = false): void {
  for (const chunks of splits(b(input))) {
    const got = run(spec, chunks, idle);
    expect({ frames: got.frames, discards: got.discards }, `split ${chunks.map((c) => c.length).join('+')}`).toEqual(expected);
  }
}

const xor: (f: Buffer) => boolean = (f) => f.subarray(0, -1).reduce((a, x) => a ^ x, 0) === f[f.length - 1];

describe('delimiter framer', () => {
  const lf: FramingSpec = { type: 'delimiter', delimiter: b('\n'), maxLength: 8 };
  const crlf: FramingSpec = { type: 'delimiter', delimiter: b('\r\n'), maxLength: 8 };
  const cases: { name: string; spec: FramingSpec; input: string; frames: string[]; discards?: Outcome['discards'] }[] = [
    { name: 'splits lines at the delimiter and drops it', spec: lf, input: 'a=1\nb=2\n', frames: ['a=1', 'b=2'] },
    { name: 'keeps empty lines as empty frames', spec: lf, input: '\n\nx\n', frames: ['', '', 'x'] },
    { name: 'holds a line without its delimiter until it comes', spec: lf, input: 'a=1\nb=', frames: ['a=1'] },
    { name: 'accepts a line of exactly the bound', spec: lf, input: '12345678\nok\n', frames: ['12345678', 'ok'] },
    { name: 'skips an overlong line up to the next delimiter and resyncs', spec: lf, input: '123456789abc\nok\n', frames: ['ok'], discards: { overlong: 13 } },
    { name: 'finds a two-byte delimiter split across chunks', spec: crlf, input: 'ab\r\ncd\r\n', frames: ['ab', 'cd'] },
    { name: 'keeps a lone CR inside a CRLF frame', spec: crlf, input: 'a\rb\r\n', frames: ['a\rb'] },
    { name: 'skips an overlong CRLF line and resyncs', spec: crlf, input: '0123456789\r\nok\r\n', frames: ['ok'], discards: { overlong: 12 } },
  ];
  for (const c of cases) {
    it(`${c.name}, wherever the input is split`, () => {
      expectSameAtEverySplit(c.spec, c.input, { frames: c.frames, discards: c.discards ?? {} });
    });
  }

  it('drops a half line when the line goes quiet, so the next line is not glued to it', () => {
    const o = run(lf, [b('tem')], true);
    o.framer.push(b('temp=1\n'));
    expect(o.frames).toEqual(['temp=1']);
    expect(o.discards).toEqual({ partial: 3 });
  });

  it('reports buffered bytes as reset when the port closes', () => {
    const o = run(lf, [b('abc')]);
    o.framer.reset();
    expect(o.discards).toEqual({ reset: 3 });
    expect(o.framer.buffered).toBe(0);
  });

  it('never holds more than the bound plus the delimiter during a flood without delimiters', () => {
    const o = run(lf, Array.from({ length: 100 }, () => Buffer.alloc(1000, 0x41)));
    expect(o.peak).toBeLessThanOrEqual(9);
    expect(o.discards.overlong! + o.framer.buffered).toBe(100_000);
  });
});

describe('fixed-length framer', () => {
  it('cuts records of the configured length, wherever the input is split', () => {
    expectSameAtEverySplit({ type: 'fixed', length: 3 }, 'abcdefgh', { frames: ['abc', 'def'], discards: {} });
  });

  it('drops garbage before the sync marker and after a failed check', () => {
    // frames: "\xAA" + 2 data + xor; the middle one has a bad check byte
    const good1 = '\xAA\x01\x02' + String.fromCharCode(0xaa ^ 1 ^ 2);
    const bad = '\xAA\x05\x06\x00';
    const good2 = '\xAA\x03\x04' + String.fromCharCode(0xaa ^ 3 ^ 4);
    expectSameAtEverySplit({ type: 'fixed', length: 4, sync: b('\xAA'), check: xor }, `zz${good1}${bad}${good2}`, {
      frames: [good1, good2],
      discards: { garbage: 5, checksum: 1 },
    });
  });

  it('drops a half record on idle so the next record starts aligned', () => {
    const o = run({ type: 'fixed', length: 4 }, [b('ab')], true);
    o.framer.push(b('wxyz'));
    expect(o.frames).toEqual(['wxyz']);
    expect(o.discards).toEqual({ partial: 2 });
  });
});

describe('length-prefixed framer', () => {
  // sync 0x7E, 1-byte length, payload, xor check byte: total = 2 + len + 1
  const spec: FramingSpec = { type: 'length-prefixed', sync: b('\x7E'), lengthOffset: 1, lengthSize: 1, adjust: 1, maxLength: 16, check: xor };
  const frame = (payload: string) => {
    const body = `\x7E${String.fromCharCode(payload.length)}${payload}`;
    return body + String.fromCharCode([...b(body)].reduce((a, x) => a ^ x, 0));
  };

  it('reads the length from the header, wherever the input is split', () => {
    expectSameAtEverySplit(spec, frame('hi') + frame('') + frame('xyz'), { frames: [frame('hi'), frame(''), frame('xyz')], discards: {} });
  });

  it('resyncs after an impossible length and a bad check', () => {
    const impossible = '\x7E\xFF'; // 255 + 3 > maxLength: the marker is garbage
    const corrupt = frame('ab').slice(0, -1) + '\x00';
    expectSameAtEverySplit(spec, impossible + corrupt + frame('ok'), {
      frames: [frame('ok')],
      discards: { garbage: 2 + 4, checksum: 1 },
    });
  });

  it('counts a corrupted frame once, not again for a header inside it that fails its check too', () => {
    // 7E 03 | 7E 01 7A | bad check: read from its third byte, it is another frame "7E 01 7A ?" whose check fails
    const corrupt = frame('\x7E\x01z').slice(0, -1) + '\x00';
    expectSameAtEverySplit(spec, corrupt + frame('ok'), {
      frames: [frame('ok')],
      discards: { checksum: 1, garbage: 5 },
    });
  });

  it('reads a little-endian 2-byte length', () => {
    const o = run({ type: 'length-prefixed', lengthOffset: 0, lengthSize: 2, littleEndian: true, maxLength: 64 }, [b('\x03\x00abc\x01\x00z')]);
    expect(o.frames).toEqual(['\x03\x00abc', '\x01\x00z']);
  });
});

describe('gap framer', () => {
  it('ends a frame when the line goes quiet', () => {
    const o = run({ type: 'gap', gapMs: 5, maxLength: 8 }, [b('ab'), b('cd')], true);
    o.framer.push(b('ef'));
    o.framer.idle();
    expect(o.frames).toEqual(['abcd', 'ef']);
  });

  it('drops a stream that never pauses as overlong, bounded by maxLength', () => {
    const o = run({ type: 'gap', gapMs: 5, maxLength: 8 }, [b('0123456789'), b('abcdefghij')], true);
    expect(o.frames).toEqual([]);
    expect(o.discards).toEqual({ overlong: 20 });
    expect(o.peak).toBeLessThanOrEqual(8);
  });
});

describe('framers under random garbage', () => {
  it('recover every frame that follows a delimiter, keep their bound and account for every byte', () => {
    const rand = prng(7);
    for (let round = 0; round < 50; round++) {
      const lines: string[] = [];
      let input = '';
      for (let i = 0; i < 20; i++) {
        if (rand() < 0.3) {
          // garbage without a newline, sometimes longer than the bound
          input += Array.from({ length: Math.floor(rand() * 40) }, () => String.fromCharCode(0x20 + Math.floor(rand() * 90))).join('');
        }
        const line = `v=${Math.floor(rand() * 1000)}`;
        input += '\n' + line + '\n';
        lines.push(line);
      }
      const chunks: Buffer[] = [];
      const bytes = b(input);
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 17);
        chunks.push(bytes.subarray(at, at + n));
        at += n;
      }
      const o = run({ type: 'delimiter', delimiter: b('\n'), maxLength: 24 }, chunks);
      expect(o.frames.filter((f) => f.startsWith('v='))).toEqual(lines);
      expect(o.peak).toBeLessThanOrEqual(25);
      const framed = o.frames.reduce((a, f) => a + f.length + 1, 0);
      const dropped = Object.values(o.discards).reduce((a, n) => a + n, 0);
      expect(framed + dropped + o.framer.buffered).toBe(bytes.length);
    }
  });

  it('never throw on random bytes, for every framing', () => {
    const rand = prng(11);
    const specs: FramingSpec[] = [
      { type: 'delimiter', delimiter: b('\r\n'), maxLength: 32 },
      { type: 'fixed', length: 5, sync: b('\xAA\x55'), check: xor },
      { type: 'length-prefixed', lengthOffset: 1, lengthSize: 2, maxLength: 40, check: xor },
      { type: 'gap', gapMs: 1, maxLength: 16 },
    ];
    for (const spec of specs) {
      const chunks = Array.from({ length: 200 }, () => Buffer.from(Array.from({ length: Math.floor(rand() * 30) }, () => Math.floor(rand() * 256))));
      let o: Outcome | undefined;
      expect(() => (o = run(spec, chunks, true))).not.toThrow();
      expect(o!.peak).toBeLessThanOrEqual(42);
    }
  });
});
