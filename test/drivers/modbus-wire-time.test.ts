/**
 * The modbus timeout runs from the request's write to the answer's last byte. At a low baud
 * rate the frames themselves take longer than the default 500 ms: a 64-register answer is
 * 133 bytes, 554 ms at 2400 baud 8N1 (Eastron SDM meters' default), so every poll timed out.
 * The wait is the configured timeout plus both frames' time on the wire.
 */
import { describe, expect, it } from 'vitest';
import { modbusRtu, wireMs } from '../../drivers/modbus-rtu/index.js';
import type { DriverContext, LineSettings } from '../../src/serial/driver-api.js';

function waits(line: LineSettings, options: object): Promise<number[]> {
  const timeouts: number[] = [];
  const ctx: DriverContext = {
    device: 'sdm630',
    line,
    now: () => 0,
    write: async () => undefined,
    transact: async (_request, opts) => void timeouts.push(opts.timeoutMs),
    fail: () => undefined,
  };
  const inst = modbusRtu.create(modbusRtu.options.parse({ slave_id: 1, retries: 0, ...options }), ctx);
  return inst.poll!.run().then(() => timeouts);
}

describe('modbus-rtu timeout at the line speed', () => {
  it('waits the timeout plus the request and the answer on the wire: 500 ms + 141 bytes at 2400 baud', async () => {
    const line: LineSettings = { baud: 2400, dataBits: 8, parity: 'none', stopBits: 1 };
    const registers = [{ name: 'first', table: 'input', address: 0, type: 'float32' }, { name: 'last', table: 'input', address: 62, type: 'float32' }];
    // 64 registers: an 8-byte request, a 5 + 128-byte answer, 10 bits a byte.
    expect(await waits(line, { max_gap: 60, registers })).toEqual([500 + Math.ceil((141 * 10 * 1000) / 2400)]);
    expect(wireMs(line, 141)).toBe(588);
  });

  it('adds little at 19200 baud with parity, and counts a coil answer in bits', async () => {
    const line: LineSettings = { baud: 19_200, dataBits: 8, parity: 'even', stopBits: 1 };
    expect(await waits(line, { timeout: '200ms', registers: [{ name: 'relay', table: 'coil', address: 0 }] })).toEqual([200 + Math.ceil(((8 + 6) * 11 * 1000) / 19_200)]);
  });
});
