/**
 * The register map of one slave: each entry names a value in one of the four tables, with its
 * type and word order. Entries are grouped into as few read requests as the limits allow
 * (a gap of a few unused registers costs less than another round trip on a 9600 baud bus).
 */
import { z } from '../../src/serial/driver-api.js';
import type { Table } from './codec.js';

export const TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'bool'] as const;
export type RegisterType = (typeof TYPES)[number];

export const registerSchema = z
  .object({
    name: z.string().min(1).describe('Metric name.'),
    table: z.enum(['holding', 'input', 'coil', 'discrete']).default('holding'),
    address: z.number().int().min(0).max(65_535).describe('Zero-based address on the wire (40001 in a manual is address 0 of holding).'),
    type: z.enum(TYPES).optional().describe('Default: bool for coil/discrete, uint16 for registers.'),
    word_order: z.enum(['big', 'little']).default('big').describe('32-bit values: big = high word first (ABCD), little = low word first (CDAB).'),
    scale: z.number().default(1).describe('Published value = raw × scale (the device map can scale again).'),
    unit: z.string().optional(),
    writable: z.boolean().default(false).describe('Allow writes by name on the command topic (holding and coil only).'),
  })
  .strict()
  .superRefine((r, ctx) => {
    const bits = r.table === 'coil' || r.table === 'discrete';
    if (bits && r.type !== undefined && r.type !== 'bool') ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${r.table} is a single bit: use type bool or leave it out` });
    if (!bits && r.type === 'bool') ctx.addIssue({ code: 'custom', path: ['type'], message: 'registers are 16-bit: use int16, uint16, int32, uint32 or float32' });
    if (r.writable && (r.table === 'input' || r.table === 'discrete')) ctx.addIssue({ code: 'custom', path: ['writable'], message: `the ${r.table} table is read-only` });
    // A 32-bit value needs the next register too; addresses end at 65535.
    if (!bits && r.type !== 'bool' && r.address + width(r) - 1 > 65_535) {
      ctx.addIssue({ code: 'custom', path: ['address'], message: `a ${typeOf(r)} takes 2 registers and the last address is 65535: use at most 65534` });
    }
  });

export type Register = z.output<typeof registerSchema>;

export function typeOf(r: Register): RegisterType {
  return r.type ?? (r.table === 'coil' || r.table === 'discrete' ? 'bool' : 'uint16');
}

/** Registers (or bits) a value occupies. */
export function width(r: Register): number {
  const t = typeOf(r);
  return t === 'int32' || t === 'uint32' || t === 'float32' ? 2 : 1;
}

export interface Block {
  table: Table;
  address: number;
  count: number;
  registers: Register[];
}

/** Groups registers of one table into read blocks of at most maxCount, bridging gaps up to maxGap. */
export function planBlocks(registers: readonly Register[], maxGap: number, maxRegisters: number): Block[] {
  const blocks: Block[] = [];
  for (const table of ['holding', 'input', 'coil', 'discrete'] as const) {
    const limit = table === 'coil' || table === 'discrete' ? Math.min(2000, maxRegisters * 16) : maxRegisters;
    const gap = table === 'coil' || table === 'discrete' ? maxGap * 16 : maxGap;
    const sorted = registers.filter((r) => r.table === table).sort((a, b) => a.address - b.address);
    let cur: Block | undefined;
    for (const r of sorted) {
      const end = r.address + width(r);
      if (cur && r.address <= cur.address + cur.count + gap && end - cur.address <= limit) {
        cur.count = Math.max(cur.count, end - cur.address);
        cur.registers.push(r);
        continue;
      }
      cur = { table, address: r.address, count: width(r), registers: [r] };
      blocks.push(cur);
    }
  }
  return blocks;
}

/** A register's value from the data bytes of its block. */
export function decodeValue(r: Register, block: Block, data: Buffer): number | boolean {
  const offset = r.address - block.address;
  const t = typeOf(r);
  if (t === 'bool') {
    if (block.table === 'coil' || block.table === 'discrete') return ((data[offset >> 3]! >> (offset & 7)) & 1) === 1;
    return data.readUInt16BE(offset * 2) !== 0;
  }
  const at = offset * 2;
  let raw: number;
  if (t === 'int16') raw = data.readInt16BE(at);
  else if (t === 'uint16') raw = data.readUInt16BE(at);
  else {
    const words = Buffer.from(r.word_order === 'big' ? data.subarray(at, at + 4) : Buffer.concat([data.subarray(at + 2, at + 4), data.subarray(at, at + 2)]));
    raw = t === 'int32' ? words.readInt32BE(0) : t === 'uint32' ? words.readUInt32BE(0) : shortestFloat32(words.readFloatBE(0));
  }
  // 15 significant digits: 2153 × 0.1 is 215.3, not 215.29999999999998.
  return r.scale === 1 ? raw : Number.isFinite(raw) ? Number((raw * r.scale).toPrecision(15)) : raw * r.scale;
}

/** A float32 as the shortest decimal that is the same float32: 230.1, not 230.10000610351562. */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let p = 1; p < 9; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

/** The 16-bit words that write `value` (already divided by scale) to a register, or what is wrong. */
export function encodeValue(r: Register, value: number): number[] | string {
  const t = typeOf(r);
  if (!Number.isFinite(value)) return 'value must be a number';
  const raw = t === 'float32' ? value : Math.round(value);
  const buf = Buffer.alloc(4);
  const ranges: Record<string, [number, number]> = { int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1] };
  const range = ranges[t];
  if (range && (raw < range[0] || raw > range[1])) return `value ${raw} is out of range for ${t}`;
  if (t === 'int16') return [raw & 0xffff];
  if (t === 'uint16') return [raw];
  if (t === 'int32') buf.writeInt32BE(raw);
  else if (t === 'uint32') buf.writeUInt32BE(raw);
  else buf.writeFloatBE(raw);
  const hi = buf.readUInt16BE(0);
  const lo = buf.readUInt16BE(2);
  return r.word_order === 'big' ? [hi, lo] : [lo, hi];
}
