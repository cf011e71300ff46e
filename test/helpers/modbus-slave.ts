/**
 * A Modbus RTU slave simulator (several slave ids on one bus) answering over any byte pipe,
 * usually a socat pty. Its CRC is the plain bitwise algorithm of the spec, independent of the
 * driver's table-driven one. Faults can be injected: corrupted CRCs, no answer (timeouts),
 * garbage before an answer, answers split in two writes, exceptions, slow answers.
 * A request that arrives while an answer is still pending is a collision, and counted.
 */

export interface SlaveMemory {
  holding: Uint16Array;
  input: Uint16Array;
  coils: Uint8Array;
  discrete: Uint8Array;
}

export function memory(size = 256): SlaveMemory {
  return { holding: new Uint16Array(size), input: new Uint16Array(size), coils: new Uint8Array(size), discrete: new Uint8Array(size) };
}

export function specCrc(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >> 1) ^ 0xa001 : crc >> 1;
  }
  return crc;
}

function frame(body: number[]): Buffer {
  const crc = specCrc(Uint8Array.from(body));
  return Buffer.from([...body, crc & 0xff, crc >> 8]);
}

export interface Faults {
  /** Corrupt the CRC of the next n answers. */
  corrupt: number;
  /** Do not answer the next n requests. */
  drop: number;
  /** Bytes sent before each answer (line noise). */
  garbage: Buffer;
  /** Write each answer in two halves this many ms apart (0: one write). */
  splitMs: number;
  /** Answer after this many ms. */
  delayMs: number;
}

export interface RequestLog {
  slave: number;
  fn: number;
  address: number;
}

export class ModbusSlaveSim {
  readonly slaves = new Map<number, SlaveMemory>();
  readonly faults: Faults = { corrupt: 0, drop: 0, garbage: Buffer.alloc(0), splitMs: 0, delayMs: 0 };
  readonly requests: RequestLog[] = [];
  collisions = 0;
  badRequests = 0;
  private buf = Buffer.alloc(0);
  private pending = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly send: (b: Buffer) => void) {}

  /** Bytes from the master. */
  feed(chunk: Buffer): void {
    if (this.pending > 0) this.collisions++;
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 8) return;
      const fn = this.buf[1]!;
      const len = fn === 0x0f || fn === 0x10 ? 9 + this.buf[6]! : 8;
      if (this.buf.length < len) return;
      const req = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
      if (specCrc(req.subarray(0, len - 2)) !== req.readUInt16LE(len - 2)) {
        this.badRequests++;
        this.buf = Buffer.alloc(0); // resync on the next request
        return;
      }
      this.handle(Buffer.from(req));
    }
  }

  private handle(req: Buffer): void {
    const slave = req[0]!;
    const fn = req[1]!;
    const address = req.readUInt16BE(2);
    this.requests.push({ slave, fn, address });
    const mem = this.slaves.get(slave);
    if (mem === undefined) return; // nobody with that id on the bus: silence
    if (this.faults.drop > 0) {
      this.faults.drop--;
      return;
    }
    let answer = this.answer(mem, req);
    if (this.faults.corrupt > 0) {
      this.faults.corrupt--;
      answer = Buffer.from(answer);
      answer[answer.length - 1]! ^= 0x5a;
    }
    const out = Buffer.concat([this.faults.garbage, answer]);
    this.pending++;
    const deliver = () => {
      if (this.faults.splitMs > 0) {
        const half = out.length >> 1;
        this.send(out.subarray(0, half));
        this.later(() => {
          this.pending--;
          this.send(out.subarray(half));
        }, this.faults.splitMs);
      } else {
        this.pending--;
        this.send(out);
      }
    };
    if (this.faults.delayMs > 0) this.later(deliver, this.faults.delayMs);
    else deliver();
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private answer(mem: SlaveMemory, req: Buffer): Buffer {
    const [slave, fn] = [req[0]!, req[1]!];
    const address = req.readUInt16BE(2);
    const value = req.readUInt16BE(4);
    const exception = (code: number) => frame([slave, fn | 0x80, code]);
    switch (fn) {
      case 0x01:
      case 0x02: {
        const bits = fn === 1 ? mem.coils : mem.discrete;
        if (value < 1 || address + value > bits.length) return exception(2);
        const bytes = new Array<number>(Math.ceil(value / 8)).fill(0);
        for (let i = 0; i < value; i++) if (bits[address + i]) bytes[i >> 3]! |= 1 << (i & 7);
        return frame([slave, fn, bytes.length, ...bytes]);
      }
      case 0x03:
      case 0x04: {
        const regs = fn === 3 ? mem.holding : mem.input;
        if (value < 1 || value > 125 || address + value > regs.length) return exception(2);
        const bytes: number[] = [];
        for (let i = 0; i < value; i++) bytes.push(regs[address + i]! >> 8, regs[address + i]! & 0xff);
        return frame([slave, fn, bytes.length, ...bytes]);
      }
      case 0x05:
        if (address >= mem.coils.length) return exception(2);
        if (value !== 0xff00 && value !== 0) return exception(3);
        mem.coils[address] = value === 0xff00 ? 1 : 0;
        return frame([...req.subarray(0, 6)]);
      case 0x06:
        if (address >= mem.holding.length) return exception(2);
        mem.holding[address] = value;
        return frame([...req.subarray(0, 6)]);
      case 0x10: {
        if (address + value > mem.holding.length) return exception(2);
        for (let i = 0; i < value; i++) mem.holding[address + i] = req.readUInt16BE(7 + i * 2);
        return frame([...req.subarray(0, 6)]);
      }
      default:
        return exception(1);
    }
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** Writes a float32 (big word order) into two registers. */
export function putFloat(regs: Uint16Array, address: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeFloatBE(value);
  regs[address] = b.readUInt16BE(0);
  regs[address + 1] = b.readUInt16BE(2);
}
