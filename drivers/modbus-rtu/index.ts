/**
 * modbus-rtu: a polling Modbus RTU master on RS-485. Each device is one slave; several devices
 * naming the same port share the bus: the host runs one transaction at a time on it, with the
 * 3.5-character silence between frames, so slaves never talk over each other.
 *
 *   every poll_interval: for each read block ─ request ─▶ answer (CRC checked by the framer)
 *                                            └ timeout ─▶ retry (up to retries) ─▶ counted
 */
import { defineDriver, duration, HeaderFramer, z, type CommandResult, type DriverContext, type DriverInstance, type PollResult, type Reading } from '../../src/serial/driver-api.js';
import { answers, crcValid, readAnswer, readRequest, responseLength, writeAnswer, writeCoilRequest, writeMultipleRequest, writeRegistersRequest } from './codec.js';
import { decodeValue, encodeValue, planBlocks, registerSchema, type Register } from './registers.js';

export const options = z
  .object({
    slave_id: z.number().int().min(1).max(247).describe('Slave address (1..247).'),
    poll_interval: duration().prefault('10s').describe('Time from the end of one poll to the start of the next.'),
    timeout: duration({ min: 10, max: 60_000 }).prefault('500ms').describe('How long to wait for an answer.'),
    retries: z.number().int().min(0).max(10).default(2).describe('Extra attempts after a timeout or bad answer.'),
    max_gap: z.number().int().min(0).max(100).default(8).describe('Read unused registers between two wanted ones if the gap is at most this (fewer round trips).'),
    max_registers: z.number().int().min(1).max(125).default(64).describe('Most registers per read request (the protocol allows 125).'),
    registers: z.array(registerSchema).min(1).describe('What to read.'),
  })
  .strict()
  .superRefine((o, ctx) => {
    const names = new Set<string>();
    o.registers.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: ['registers', i, 'name'], message: `register name "${r.name}" is used twice` });
      names.add(r.name);
    });
  });

export type ModbusOptions = z.output<typeof options>;

/** A command: write a named writable register, or a raw function 5, 6 or 16. */
const commandSchema = z.union([
  z.object({ register: z.string(), value: z.union([z.number(), z.boolean()]) }).strict(),
  z.object({ function: z.union([z.literal(5), z.literal(6), z.literal(16)]), address: z.number().int().min(0).max(65_535), value: z.union([z.number(), z.boolean(), z.array(z.number().int().min(0).max(65_535)).min(1).max(123)]) }).strict(),
]);

/**
 * How long `bytes` take on the wire at the line's settings. The timeout runs from the request's
 * write to the answer's last byte, so both transmissions come on top of it: at 2400 baud (the
 * Eastron SDM meters' default) a 64-register answer alone takes 554 ms, over the 500 ms default,
 * and every poll timed out.
 */
export function wireMs(line: DriverContext['line'], bytes: number): number {
  const bits = 1 + line.dataBits + (line.parity === 'none' ? 0 : 1) + line.stopBits;
  return Math.ceil((bytes * bits * 1000) / line.baud);
}

/** Length of a normal answer to a read request (function 1–4): slave, function, count, data, CRC. */
function readAnswerLength(table: string, count: number): number {
  return 5 + (table === 'coil' || table === 'discrete' ? Math.ceil(count / 8) : count * 2);
}

export function createModbus(o: ModbusOptions, ctx: DriverContext): DriverInstance {
  const blocks = planBlocks(o.registers, o.max_gap, o.max_registers).map((b) => ({
    ...b,
    request: readRequest(o.slave_id, b.table, b.address, b.count),
    answerBytes: readAnswerLength(b.table, b.count),
  }));

  /** One request with retries; the answer frame, or undefined when the slave never answered properly. */
  async function exchange(request: Buffer, answerBytes: number): Promise<Buffer | undefined> {
    const timeoutMs = o.timeout + wireMs(ctx.line, request.length + answerBytes);
    for (let attempt = 0; attempt <= o.retries; attempt++) {
      const frame = await ctx.transact(request, { timeoutMs, accept: (f) => answers(request, f) });
      if (frame !== undefined) return frame;
    }
    return undefined;
  }

  async function run(): Promise<PollResult> {
    const readings: Reading[] = [];
    let reachable = false;
    const ts = ctx.now();
    for (const b of blocks) {
      const frame = await exchange(b.request, b.answerBytes);
      if (frame === undefined) continue;
      reachable = true; // an exception answer still proves the slave is there
      const a = readAnswer(b.request, frame);
      if (!a.ok) {
        ctx.fail('exception', `${b.table} ${b.address}+${b.count}: ${a.detail}`);
        continue;
      }
      for (const r of b.registers) {
        const reading: Reading = { metric: r.name, value: decodeValue(r, b, a.data), ts };
        if (r.unit !== undefined) reading.unit = r.unit;
        readings.push(reading);
      }
    }
    return { readings, reachable };
  }

  async function command(payload: Buffer): Promise<CommandResult> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return { ok: false, detail: 'expected JSON: {"register": name, "value": v} or {"function": 6, "address": a, "value": v}' };
    }
    const c = commandSchema.safeParse(parsed);
    if (!c.success) return { ok: false, detail: 'expected {"register": name, "value": v} or {"function": 5|6|16, "address": a, "value": v}' };
    let request: Buffer;
    if ('register' in c.data) {
      const r: Register | undefined = o.registers.find((x) => x.name === (c.data as { register: string }).register);
      if (r === undefined || !r.writable) return { ok: false, detail: `no writable register named "${c.data.register}"` };
      if (r.table === 'coil') request = writeCoilRequest(o.slave_id, r.address, Boolean(c.data.value));
      else {
        const words = encodeValue(r, Number(c.data.value) / r.scale);
        if (typeof words === 'string') return { ok: false, detail: words };
        request = writeRegistersRequest(o.slave_id, r.address, words);
      }
    } else {
      const { function: fn, address, value } = c.data;
      if (fn === 5) request = writeCoilRequest(o.slave_id, address, Boolean(Array.isArray(value) ? value[0] : value));
      else {
        const words = Array.isArray(value) ? value : [Number(value)];
        if (fn === 6 && words.length !== 1) return { ok: false, detail: 'function 6 writes one register' };
        if (words.some((w) => !Number.isInteger(w) || w < 0 || w > 65_535)) return { ok: false, detail: 'register values are 0..65535' };
        request = fn === 6 ? writeRegistersRequest(o.slave_id, address, words) : writeMultipleRequest(o.slave_id, address, words);
      }
    }
    const frame = await exchange(request, 8); // a write's answer echoes 8 bytes
    if (frame === undefined) return { ok: false, detail: 'no answer from the slave' };
    const a = writeAnswer(request, frame);
    return a.ok ? { ok: true } : { ok: false, detail: a.detail };
  }

  return { poll: { intervalMs: o.poll_interval, run }, command };
}

export const modbusRtu = defineDriver({
  name: 'modbus-rtu',
  summary: 'Modbus RTU polling master (RS-485): holding/input registers, coils, discrete inputs; several slaves per bus.',
  options,
  shared: true,
  metricNames: (o) => o.registers.map((r) => r.name),
  framing: () => ({
    type: 'custom',
    // Answers are framed by their function code (length) and CRC; a bad CRC slides one byte.
    create: (sink) => new HeaderFramer({ headerLength: 3, frameLength: responseLength, maxLength: 256, check: crcValid }, sink),
    idleMs: 50,
  }),
  create: createModbus,
});
