/**
 * checksum_failures of a Modbus RTU device counts corrupted answers, one each. The framer
 * slides one byte past a frame whose CRC fails and tries again at each next offset; the
 * bytes of the corrupted frame itself then looked like more frames with bad CRCs (an answer
 * "01 03 04 01 03 00 02 crc" read from its second byte is "03 04 01 …", a plausible header),
 * and each was counted again: one bad answer counted two or three times.
 * Real peers: a socat pty with the slave simulator behind it, a Gateway polling it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { ModbusBus } from '../helpers/modbus-bus.js';
import { memory } from '../helpers/modbus-slave.js';

let rig: ModbusBus | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('checksum_failures of a modbus-rtu device', () => {
  it('matches the number of answers corrupted on the wire, each counted once, and the readings carry on', async () => {
    const m = memory();
    // Register values whose bytes, read one byte late, make plausible answer headers.
    m.holding[0] = 0x0103;
    m.holding[1] = 0x0002;
    rig = await ModbusBus.open('usb-RS485_crc-if00-port0', { 1: m });
    const text = [
      ...rig.configHead(),
      'serial:',
      '  devices:',
      `    - { id: meter, port: ${rig.bus.path}, baud: 19200, driver: modbus-rtu, options: { slave_id: 1, poll_interval: 40ms, timeout: 150ms, retries: 1, registers: [{ name: a, address: 0 }, { name: b, address: 1 }] } }`,
    ].join('\n');
    const { gateway, sub } = await rig.start(parseConfigText(text, 'modbus.yaml'), ['sensors/#']);
    await sub.next('sensors/meter/a');
    expect(gateway.serial.counters('meter')!.checksum_failures).toBe(0);

    const corrupted = 5;
    // One at a time, each after a good answer, so each is a separate bad frame on the wire.
    for (let i = 0; i < corrupted; i++) {
      const seen = sub.on('sensors/meter/a').length;
      rig.sim.faults.corrupt = 1;
      await sub.wait(() => rig!.sim.faults.corrupt === 0 && sub.on('sensors/meter/a').length > seen, `a reading after corrupted answer ${i + 1}`);
    }
    // The framer's idle flush of what is left of the last bad frame comes 50 ms after it.
    await sleep(200);
    const c = gateway.serial.counters('meter')!;
    expect(c.checksum_failures).toBe(corrupted);
    expect(c.timeouts).toBeLessThanOrEqual(corrupted); // each bad answer costs at most its retry
    expect(rig.sim.badRequests).toBe(0);
  }, 30_000);
});
