/**
 * Modbus RTU application PDUs (Modbus Application Protocol v1.1b3 §6): read coils (0x01),
 * discrete inputs (0x02), holding (0x03) and input registers (0x04); write single coil (0x05),
 * single register (0x06), multiple registers (0x10). Frames: slave id, PDU, CRC-16.
 */
import { crcValid, withCrc } from './crc.js';

export type Table = 'coil' | 'discrete' | 'holding' | 'input';

export const READ_FUNCTION: Record<Table, number> = { coil: 0x01, discrete: 0x02, holding: 0x03, input: 0x04 };

export const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'slave device failure',
  5: 'acknowledge',
  6: 'slave device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** Bus frame length from its first 3 bytes, for the response framer; -1 when it cannot be a response. */
export function responseLength(h: Buffer): number {
  const slave = h[0]!;
  const fc = h[1]!;
  if (slave < 1 || slave > 247) return -1;
  if (fc & 0x80) return (fc & 0x7f) >= 1 && (fc & 0x7f) <= 0x10 ? 5 : -1;
  if (fc >= 1 && fc <= 4) return 3 + h[2]! + 2;
  if (fc === 5 || fc === 6 || fc === 0x0f || fc === 0x10) return 8;
  return -1;
}

export { crcValid };

export function readRequest(slave: number, table: Table, address: number, count: number): Buffer {
  const b = Buffer.alloc(6);
  b[0] = slave;
  b[1] = READ_FUNCTION[table];
  b.writeUInt16BE(address, 2);
  b.writeUInt16BE(count, 4);
  return withCrc(b);
}

export function writeCoilRequest(slave: number, address: number, on: boolean): Buffer {
  const b = Buffer.alloc(6);
  b[0] = slave;
  b[1] = 0x05;
  b.writeUInt16BE(address, 2);
  b.writeUInt16BE(on ? 0xff00 : 0x0000, 4);
  return withCrc(b);
}

/** Function 6 for one register, 16 for several. */
export function writeRegistersRequest(slave: number, address: number, words: readonly number[]): Buffer {
  if (words.length !== 1) return writeMultipleRequest(slave, address, words);
  const b = Buffer.alloc(6);
  b[0] = slave;
  b[1] = 0x06;
  b.writeUInt16BE(address, 2);
  b.writeUInt16BE(words[0]!, 4);
  return withCrc(b);
}

/** Function 16, even for one register (some devices implement only 16). */
export function writeMultipleRequest(slave: number, address: number, words: readonly number[]): Buffer {
  const b = Buffer.alloc(7 + words.length * 2);
  b[0] = slave;
  b[1] = 0x10;
  b.writeUInt16BE(address, 2);
  b.writeUInt16BE(words.length, 4);
  b[6] = words.length * 2;
  words.forEach((w, i) => b.writeUInt16BE(w, 7 + i * 2));
  return withCrc(b);
}

/** Whether `frame` answers `request` (same slave, same function, or its exception). */
export function answers(request: Buffer, frame: Buffer): boolean {
  return frame[0] === request[0] && (frame[1]! & 0x7f) === request[1];
}

export type Answer = { ok: true; data: Buffer } | { ok: false; detail: string };

/** The data of a read answer (bytes after the byte count), or what is wrong with it. */
export function readAnswer(request: Buffer, frame: Buffer): Answer {
  if (!crcValid(frame)) return { ok: false, detail: 'bad CRC' };
  if (frame[1]! & 0x80) return { ok: false, detail: exceptionText(frame[2]!) };
  const table = request[1]!;
  const count = request.readUInt16BE(4);
  const expected = table <= 2 ? Math.ceil(count / 8) : count * 2;
  if (frame[2] !== expected) return { ok: false, detail: `answer has ${frame[2]} data bytes, expected ${expected}` };
  return { ok: true, data: frame.subarray(3, 3 + expected) };
}

/** A write is confirmed by an echo of address and value/quantity. */
export function writeAnswer(request: Buffer, frame: Buffer): Answer {
  if (frame[1]! & 0x80) return { ok: false, detail: exceptionText(frame[2]!) };
  if (!frame.subarray(2, 6).equals(request.subarray(2, 6))) return { ok: false, detail: 'the answer does not confirm the write' };
  return { ok: true, data: frame.subarray(2, 6) };
}

export function exceptionText(code: number): string {
  return `exception ${code} (${EXCEPTIONS[code] ?? 'unknown'})`;
}
