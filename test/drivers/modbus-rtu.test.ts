import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { answers, readAnswer, readRequest, responseLength, writeAnswer, writeCoilRequest, writeMultipleRequest, writeRegistersRequest } from '../../drivers/modbus-rtu/codec.js';
import { crc16, crcValid } from '../../drivers/modbus-rtu/crc.js';
import { modbusRtu, options } from '../../drivers/modbus-rtu/index.js';
import { decodeValue, encodeValue, planBlocks, registerSchema, type Register } from '../../drivers/modbus-rtu/registers.js';
import type { DriverContext, TransactOptions } from '../../src/serial/driver-api.js';
import { createFramer } from '../../src/serial/framers/index.js';
import { memory, ModbusSlaveSim, putFloat, specCrc } from '../helpers/modbus-slave.js';
import { stubContext } from '../helpers/driver-run.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const capture = readFileSync(new URL('../../drivers/modbus-rtu/sample.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('>') || l.startsWith('<'))
  .map((l) => ({ dir: l[0], bytes: hex(l.slice(2)) }));
const reg = (r: Partial<Register> & { name: string; address: number }) => registerSchema.parse(r);

describe('Modbus RTU CRC-16', () => {
  it('matches the spec example and the independent bitwise implementation', () => {
    expect(crc16(hex('01 03 00 00 00 0A'))).toBe(0xcdc5); // sent as C5 CD
    for (const { bytes } of capture) {
      expect(crcValid(bytes)).toBe(true);
      expect(crc16(bytes, bytes.length - 2)).toBe(specCrc(bytes.subarray(0, -2)));
    }
    expect(crcValid(hex('01 03 00 00 00 0A C5 CE'))).toBe(false);
  });
});

describe('Modbus RTU codec', () => {
  it('builds the requests of the captured session byte for byte', () => {
    expect(readRequest(1, 'input', 0, 14)).toEqual(capture[0]!.bytes);
    expect(readRequest(2, 'input', 0x156, 2)).toEqual(capture[2]!.bytes);
    expect(writeRegistersRequest(1, 10, [30])).toEqual(capture[4]!.bytes);
    expect(writeCoilRequest(3, 1, true).subarray(0, 6)).toEqual(hex('03 05 00 01 FF 00'));
    expect(writeMultipleRequest(1, 2, [1]).subarray(0, 9)).toEqual(hex('01 10 00 02 00 01 02 00 01'));
  });

  it('frames the captured answers by function code, wherever the bytes are split, with garbage and a bad CRC in between', () => {
    const answers_ = capture.filter((c) => c.dir === '<').map((c) => c.bytes);
    const broken = Buffer.from(answers_[0]!);
    broken[10]! ^= 0xff;
    const stream = Buffer.concat([hex('00 FF 13'), broken, answers_[0]!, answers_[1]!, hex('07'), answers_[2]!]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const frames: string[] = [];
      const f = createFramer(modbusRtu.framing({} as never), { frame: (x) => frames.push(x.toString('hex')), discard: () => undefined });
      f.push(stream.subarray(0, cut));
      f.push(stream.subarray(cut));
      f.idle(); // the line goes quiet: a header that promised more bytes was garbage
      expect(frames, `cut at ${cut}`).toEqual(answers_.map((a) => a.toString('hex')));
    }
  });

  it('decodes the captured meter answer into voltage, current and power', () => {
    const regs = [reg({ name: 'voltage', table: 'input', address: 0, type: 'float32' }), reg({ name: 'current', table: 'input', address: 6, type: 'float32' }), reg({ name: 'power', table: 'input', address: 12, type: 'float32' })];
    const [block] = planBlocks(regs, 8, 64);
    expect(block).toMatchObject({ table: 'input', address: 0, count: 14 });
    const a = readAnswer(capture[0]!.bytes, capture[1]!.bytes);
    expect(a.ok).toBe(true);
    const values = regs.map((r) => decodeValue(r, block!, (a as { data: Buffer }).data) as number);
    expect(values.map((v) => Math.round(v * 100) / 100)).toEqual([229.8, 1.25, 287.3]);
    expect(readAnswer(capture[2]!.bytes, capture[3]!.bytes)).toEqual({ ok: false, detail: 'exception 2 (illegal data address)' });
    expect(writeAnswer(capture[4]!.bytes, capture[5]!.bytes).ok).toBe(true);
    expect(answers(capture[0]!.bytes, capture[3]!.bytes)).toBe(false);
  });

  it('decodes every type in both word orders and encodes writes back', () => {
    const data = hex('FF FE 12 34 56 78 3F C0 00 00');
    const block = { table: 'holding' as const, address: 100, count: 5, registers: [] };
    const at = (type: Register['type'], address: number, word_order: 'big' | 'little' = 'big') => decodeValue(reg({ name: 'x', address, type, word_order }), block, data);
    expect(at('int16', 100)).toBe(-2);
    expect(at('uint16', 100)).toBe(65534);
    expect(at('uint32', 101)).toBe(0x12345678);
    expect(at('uint32', 101, 'little')).toBe(0x56781234);
    expect(at('int32', 100)).toBe(-2 * 65536 + 0x1234);
    expect(at('float32', 103)).toBe(1.5);
    expect(encodeValue(reg({ name: 'x', address: 0, type: 'float32', word_order: 'little' }), 1.5)).toEqual([0x0000, 0x3fc0]);
    expect(encodeValue(reg({ name: 'x', address: 0, type: 'int16' }), -2)).toEqual([0xfffe]);
    expect(encodeValue(reg({ name: 'x', address: 0, type: 'uint16' }), 70000)).toBe('value 70000 is out of range for uint16');
    const coils = { table: 'coil' as const, address: 0, count: 10, registers: [] };
    expect(decodeValue(reg({ name: 'c', table: 'coil', address: 9 }), coils, hex('00 02'))).toBe(true);
  });

  it('publishes a float32 as its shortest decimal and a scaled register without floating-point noise', () => {
    const f = Buffer.alloc(4);
    f.writeFloatBE(230.1);
    const data = Buffer.concat([f, hex('08 69 00 1D')]); // float32 230.1, 2153, 29
    const block = { table: 'holding' as const, address: 0, count: 4, registers: [] };
    expect(decodeValue(reg({ name: 'v', address: 0, type: 'float32' }), block, data)).toBe(230.1);
    expect(decodeValue(reg({ name: 't', address: 2, scale: 0.1 }), block, data)).toBe(215.3);
    expect(decodeValue(reg({ name: 'h', address: 3, scale: 0.1 }), block, data)).toBe(2.9);
    expect(decodeValue(reg({ name: 'w', address: 0, type: 'float32', scale: 1000 }), block, data)).toBe(230_100);
  });

  it('groups registers into few reads within the gap and size limits', () => {
    const r = (address: number, table: Register['table'] = 'holding', type?: Register['type']) => reg({ name: `r${address}${table}`, address, table, type });
    const blocks = planBlocks([r(0), r(5, 'holding', 'float32'), r(20), r(200, 'input'), r(3, 'coil'), r(90, 'coil')], 8, 64);
    expect(blocks.map((b) => `${b.table}:${b.address}+${b.count}`)).toEqual(['holding:0+7', 'holding:20+1', 'input:200+1', 'coil:3+88']);
    expect(planBlocks([r(0), r(100)], 200, 64).map((b) => b.count)).toEqual([1, 1]);
  });

  it('rejects option mistakes with the key that is wrong', () => {
    const bad = options.safeParse({ slave_id: 0, registers: [{ name: 'a', table: 'coil', address: 1, type: 'float32' }, { name: 'a', table: 'input', address: 2, writable: true }] });
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['slave_id', 'registers.0.type', 'registers.1.writable', 'registers.1.name']);
  });

  it('rejects a 32-bit register at the last address, whose second word would be past 65535', () => {
    const bad = options.safeParse({ slave_id: 1, registers: [{ name: 'e', address: 65_535, type: 'uint32' }, { name: 'ok', address: 65_535 }, { name: 'f', address: 65_534, type: 'float32' }] });
    expect(bad.error!.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['registers.0.address', 'a uint32 takes 2 registers and the last address is 65535: use at most 65534'],
    ]);
  });
});

describe('modbus-rtu driver against the slave simulator', () => {
  /** A bus in memory: transact feeds the simulator, whose (synchronous) answer goes through the driver's framer. */
  function simBus() {
    let waiting: { opts: TransactOptions; resolve: (f: Buffer | undefined) => void } | undefined;
    const strays: Buffer[] = [];
    const framer = createFramer(modbusRtu.framing({} as never), {
      frame: (f) => {
        const w = waiting;
        if (w && w.opts.accept(f)) {
          waiting = undefined;
          w.resolve(f);
        } else strays.push(f);
      },
      discard: () => undefined,
    });
    const sim = new ModbusSlaveSim((b) => framer.push(b));
    const failures: string[] = [];
    const ctx: DriverContext = {
      ...stubContext(),
      fail: (kind, detail) => void failures.push(`${kind}: ${detail}`),
      transact: (request, opts) =>
        new Promise((resolve) => {
          waiting = { opts, resolve };
          framer.idle();
          sim.feed(request);
          if (waiting) {
            waiting = undefined; // nothing came back: a timeout
            resolve(undefined);
          }
        }),
    };
    return { sim, ctx, failures, strays };
  }

  const opts = options.parse({
    slave_id: 1,
    retries: 2,
    registers: [
      { name: 'voltage', table: 'input', address: 0, type: 'float32', unit: 'V' },
      { name: 'on_time', address: 10, writable: true, scale: 0.5 },
      { name: 'relay', table: 'coil', address: 3, writable: true },
    ],
  });

  it('polls every block and publishes typed, scaled values with units', async () => {
    const bus = simBus();
    const m = memory();
    putFloat(m.input, 0, 229.5);
    m.holding[10] = 30;
    m.coils[3] = 1;
    bus.sim.slaves.set(1, m);
    const drv = modbusRtu.create(opts, bus.ctx);
    const r = await drv.poll!.run();
    expect(r.reachable).toBe(true);
    expect(r.readings.map((x) => [x.metric, x.value, x.unit])).toEqual([
      ['on_time', 15, undefined],
      ['voltage', 229.5, 'V'],
      ['relay', true, undefined],
    ]);
    expect(drv.poll!.intervalMs).toBe(10_000);
  });

  it('retries after a corrupted CRC and a silent slave, and gives up after the retries', async () => {
    const bus = simBus();
    bus.sim.slaves.set(1, memory());
    const drv = modbusRtu.create(opts, bus.ctx);
    bus.sim.faults.corrupt = 1;
    bus.sim.faults.drop = 1;
    expect((await drv.poll!.run()).readings).toHaveLength(3); // holding block: 3 attempts, the third answered
    expect(bus.sim.requests).toHaveLength(5);
    bus.sim.faults.drop = 100;
    const r = await drv.poll!.run();
    expect(r).toEqual({ readings: [], reachable: false });
    expect(bus.sim.requests).toHaveLength(5 + 9);
  });

  it('counts an exception answer and still calls the slave reachable', async () => {
    const bus = simBus();
    bus.sim.slaves.set(1, memory(8)); // address 10 does not exist there
    const r = await modbusRtu.create(opts, bus.ctx).poll!.run();
    expect(r.reachable).toBe(true);
    expect(bus.failures).toEqual(['exception: holding 10+1: exception 2 (illegal data address)']);
    expect(r.readings.map((x) => x.metric)).toEqual(['voltage', 'relay']);
  });

  it('writes named registers (scaled) and coils, and raw functions, confirming each by the echo', async () => {
    const bus = simBus();
    const m = memory();
    bus.sim.slaves.set(1, m);
    const drv = modbusRtu.create(opts, bus.ctx);
    const cmd = (o: unknown) => drv.command!(Buffer.from(JSON.stringify(o)));
    expect(await cmd({ register: 'on_time', value: 21 })).toEqual({ ok: true });
    expect(m.holding[10]).toBe(42);
    expect(await cmd({ register: 'relay', value: true })).toEqual({ ok: true });
    expect(m.coils[3]).toBe(1);
    expect(await cmd({ function: 16, address: 20, value: [1, 2, 3] })).toEqual({ ok: true });
    expect([...m.holding.subarray(20, 23)]).toEqual([1, 2, 3]);
    expect(await cmd({ register: 'voltage', value: 1 })).toEqual({ ok: false, detail: 'no writable register named "voltage"' });
    expect(await cmd({ function: 6, address: 9999, value: 1 })).toEqual({ ok: false, detail: 'exception 2 (illegal data address)' });
    expect((await drv.command!(Buffer.from('nope'))).ok).toBe(false);
    bus.sim.faults.drop = 3;
    expect(await cmd({ function: 6, address: 1, value: 1 })).toEqual({ ok: false, detail: 'no answer from the slave' });
  });
});
