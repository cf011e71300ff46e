/**
 * A reload that rescales one meter on a shared RS-485 bus (a socat pty with the slave
 * simulator behind it) while both are polled: the bus stays open, the meter stays online, its
 * next readings carry the new scale, its neighbour is untouched, and no two requests collide.
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

describe('a reload that rescales a meter on a shared bus', () => {
  it('keeps the bus open and both meters online, and applies the new scale from the next poll', async () => {
    const m1 = memory();
    m1.input[0] = 2301;
    const m2 = memory();
    m2.input[0] = 50;
    rig = await ModbusBus.open('usb-RS485_bus-if00-port0', { 1: m1, 2: m2 });
    const { bus, sim } = rig;

    const config = (scale: number) =>
      parseConfigText(
        [
          ...rig!.configHead(),
          'serial:',
          '  devices:',
          `    - { id: meter1, port: ${bus.path}, baud: 19200, driver: modbus-rtu, metrics: { volts: { scale: ${scale} } }, options: { slave_id: 1, poll_interval: 30ms, timeout: 150ms, registers: [{ name: volts, table: input, address: 0 }] } }`,
          `    - { id: meter2, port: ${bus.path}, baud: 19200, driver: modbus-rtu, options: { slave_id: 2, poll_interval: 30ms, timeout: 150ms, registers: [{ name: amps, table: input, address: 0 }] } }`,
        ].join('\n'),
        'bus.yaml',
      );
    const { gateway, sub } = await rig.start(config(1), ['sensors/#', '$SYS/outpost/serial/+/state']);
    await sub.next('sensors/meter1/volts', (p) => JSON.parse(p).value === 2301);
    await sub.wait(() => sub.on('$SYS/outpost/serial/meter1/state').at(-1) === 'online', 'meter1 online');
    const link = gateway.serial.linkOf('meter1');
    const statesBefore = sub.on('$SYS/outpost/serial/meter1/state').length;

    expect(await gateway.serial.reload(config(0.1).serial)).toEqual(['serial device meter1 changed (its port stays open)']);
    await sub.next('sensors/meter1/volts', (p) => JSON.parse(p).value === 230.1);
    const amps = sub.on('sensors/meter2/amps').length;
    await sub.wait(() => sub.on('sensors/meter2/amps').length > amps + 2, 'meter2 polled on');

    expect(gateway.serial.linkOf('meter1')).toBe(link);
    expect(gateway.serial.linkOf('meter2')).toBe(link);
    expect(sub.on('$SYS/outpost/serial/meter1/state').slice(statesBefore)).not.toContain('offline');
    expect(sub.on('sensors/meter1/volts').map((p) => JSON.parse(p).value).every((v) => v === 2301 || v === 230.1)).toBe(true);
    expect(sim.collisions).toBe(0);
    expect(gateway.serial.counters('meter1')).toMatchObject({ reopens: 0, timeouts: 0 });
  }, 20_000);
});
