import { afterEach, describe, expect, it } from 'vitest';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const jsonDevice = (id: string, port: string, extra = '') =>
  `  - { id: ${id}, port: ${port}, driver: line-json${extra} }`;

describe('serial driver host', () => {
  it('publishes each reading of a line device to its mapped topic and says online (retained)', async () => {
    rig = await startHost(
      serialConfig(
        [
          'devices:',
          '  - id: boiler',
          '    port: /dev/ttyUSB0',
          '    driver: line-json',
          '    metrics:',
          '      temp: { name: temperature, scale: 0.1, unit: "°C" }',
        ].join('\n'),
      ),
    );
    expect(rig.on('$SYS/outpost/serial/boiler/state')).toEqual(['offline']);
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    expect(rig.ports.opened).toEqual([{ path: '/dev/ttyUSB0', line: { baud: 9600, dataBits: 8, parity: 'none', stopBits: 1 } }]);
    expect(rig.on('$SYS/outpost/serial/boiler/state')).toEqual(['offline', 'online']);
    expect(rig.messages.find((m) => m.topic.endsWith('/state') && m.payload.toString() === 'online')!.retain).toBe(true);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":215,"heater":true}\n');
    await settle();
    const now = rig.clock.now();
    expect(rig.on('sensors/boiler/temperature')).toEqual([JSON.stringify({ value: 21.5, unit: '°C', ts: now })]);
    expect(rig.on('sensors/boiler/heater')).toEqual([JSON.stringify({ value: true, ts: now })]);
    const m = rig.messages.find((x) => x.topic === 'sensors/boiler/heater')!;
    expect(m.origin).toEqual({ kind: 'serial', id: 'boiler' });
    expect(rig.host.counters('boiler')).toMatchObject({ frames: 1, readings: 2, published: 2 });
  });

  it('keeps retrying a missing port with capped backoff, and never fails start', async () => {
    // random = 1: each delay is 3× the previous one, up to the cap
    rig = await startHost(serialConfig(['reopen: { base: 1s, cap: 20s }', 'devices:', jsonDevice('gps', '/dev/ttyACM0')].join('\n')), { random: () => 1 });
    for (let i = 0; i < 60; i++) await rig.advance(1000); // a minute without the device
    expect(rig.host.isOnline('gps')).toBe(false);
    const delays = rig.logs.filter((l) => l.msg === 'serial port unavailable, retrying').map((l) => l.retryInMs);
    expect(delays).toEqual([3000, 9000, 20_000, 20_000, 20_000]); // at 0, 3, 12, 32 and 52 s: capped
    expect(rig.ports.listCalls).toBe(0); // a path needs no USB listing
    rig.ports.plug('/dev/ttyACM0');
    await rig.advance(20_000);
    expect(rig.host.isOnline('gps')).toBe(true);
  });

  it('closes a pulled port, says offline, reopens it with backoff and counts the reopen', async () => {
    rig = await startHost(serialConfig(['reopen: { base: 2s, cap: 10s }', 'devices:', jsonDevice('boiler', '/dev/ttyUSB0', ', options: { idle_timeout: 500ms }')].join('\n')));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(2000);
    expect(rig.host.isOnline('boiler')).toBe(true);
    // half a line, then the cable is pulled
    rig.ports.device('/dev/ttyUSB0').write('{"temp":2');
    await settle();
    rig.ports.unplug('/dev/ttyUSB0');
    await settle();
    expect(rig.host.isOnline('boiler')).toBe(false);
    expect(rig.on('$SYS/outpost/serial/boiler/state')).toEqual(['offline', 'online', 'offline']);
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1999);
    expect(rig.ports.isOpen('/dev/ttyUSB0')).toBe(false);
    await rig.advance(1);
    expect(rig.ports.isOpen('/dev/ttyUSB0')).toBe(true);
    rig.ports.device('/dev/ttyUSB0').write('1}\n{"temp":3}\n');
    await settle();
    // the half line was dropped with the old port; "1}" is not glued to it
    expect(rig.on('sensors/boiler/temp')).toHaveLength(1);
    expect(rig.host.counters('boiler')).toMatchObject({ reopens: 1, discarded_bytes: 9, decode_failures: 1 });
  });

  it('takes a port whose device node vanished without a close event for unplugged within a second, and reopens it when it is back', async () => {
    rig = await startHost(serialConfig(['devices:', jsonDevice('boiler', '/dev/ttyUSB0')].join('\n')));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    expect(rig.host.isOnline('boiler')).toBe(true);
    rig.ports.vanish('/dev/ttyUSB0');
    await rig.advance(999);
    await settle();
    expect(rig.host.isOnline('boiler')).toBe(true); // not checked yet
    await rig.advance(1001);
    await settle();
    expect(rig.host.isOnline('boiler')).toBe(false);
    expect(rig.ports.isOpen('/dev/ttyUSB0')).toBe(false);
    expect(rig.logs.find((l) => l.msg === 'serial port lost')).toMatchObject({ reason: '/dev/ttyUSB0 is gone (the adapter was unplugged)' });
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(5000);
    expect(rig.host.isOnline('boiler')).toBe(true);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":3}\n');
    await settle();
    expect(rig.on('sensors/boiler/temp')).toHaveLength(1);
  });

  it('finds a USB adapter by vendor, product and serial number wherever it enumerates', async () => {
    rig = await startHost(serialConfig(['devices:', '  - { id: meter, port: { vendor_id: "0403", product_id: "6001", serial_number: A50 }, driver: line-kv }'].join('\n')));
    rig.ports.plug('/dev/ttyUSB0', { vendorId: '0403', productId: '6001', serialNumber: 'OTHER' });
    rig.ports.plug('/dev/ttyUSB1', { vendorId: '0403', productId: '6001', serialNumber: 'A50' });
    await rig.advance(1000);
    expect(rig.ports.opened.map((o) => o.path)).toEqual(['/dev/ttyUSB1']);
    rig.ports.unplug('/dev/ttyUSB1');
    rig.ports.plug('/dev/ttyUSB2', { vendorId: '0x403', productId: '6001', serialNumber: 'A50' });
    await rig.advance(1000);
    expect(rig.ports.opened.map((o) => o.path)).toEqual(['/dev/ttyUSB1', '/dev/ttyUSB2']);
    rig.ports.device('/dev/ttyUSB2').write('kwh=12.5\n');
    await settle();
    expect(rig.on('sensors/meter/kwh')).toHaveLength(1);
  });

  it('counts garbage, overlong lines and bad frames, logs them rate-limited, and keeps other devices unaffected', async () => {
    rig = await startHost(
      serialConfig(['devices:', jsonDevice('noisy', '/dev/ttyUSB0', ', options: { max_line: 64 }'), jsonDevice('quiet', '/dev/ttyUSB1')].join('\n')),
    );
    rig.ports.plug('/dev/ttyUSB0');
    rig.ports.plug('/dev/ttyUSB1');
    await rig.advance(1000);
    const noisy = rig.ports.device('/dev/ttyUSB0');
    for (let i = 0; i < 200; i++) noisy.write(i % 2 ? 'x'.repeat(300) + '\n' : '\u0000\u00ff garbage\n');
    noisy.write('{"ok":1}\n');
    rig.ports.device('/dev/ttyUSB1').write('{"t":1}\n');
    await settle(10);
    expect(rig.host.counters('noisy')).toMatchObject({ decode_failures: 100, discarded_bytes: 100 * 301, readings: 1 });
    expect(rig.on('sensors/noisy/ok')).toHaveLength(1);
    expect(rig.on('sensors/quiet/t')).toHaveLength(1);
    expect(rig.host.counters('quiet')).toMatchObject({ decode_failures: 0, discarded_bytes: 0 });
    // 5 lines per kind per 10 s window, the rest summarised in the next line through
    const bad = rig.logs.filter((l) => l.msg === 'bad frame from device' || l.msg === 'bytes discarded');
    expect(bad).toHaveLength(10);
    await rig.advance(10_000);
    noisy.write('nope\n');
    await settle();
    expect(rig.logs.at(-1)).toMatchObject({ msg: 'bad frame from device', suppressed: 95, device: 'noisy' });
  });

  it('counts and logs a reading dropped because its text is not a number the device map asks for', async () => {
    rig = await startHost(
      serialConfig(['devices:', jsonDevice('boiler', '/dev/ttyUSB0', ', options: { strings: true }, metrics: { temp: { type: number, scale: 0.1 } }')].join('\n')),
    );
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":"n/a"}\n{"temp":"216"}\n');
    await settle();
    expect(rig.on('sensors/boiler/temp')).toEqual([JSON.stringify({ value: 21.6, ts: rig.clock.now() })]);
    expect(rig.host.counters('boiler')).toMatchObject({ frames: 2, readings: 2, published: 1, decode_failures: 1 });
    expect(rig.logs.find((l) => l.msg === 'bad frame from device')).toMatchObject({ device: 'boiler', detail: 'metric temp: "n/a" is not a number' });
  });

  it('publishes the counters retained every stats interval', async () => {
    rig = await startHost(serialConfig(['stats_interval: 5s', 'devices:', jsonDevice('boiler', '/dev/ttyUSB0')].join('\n')));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('{"a":1,"b":2}\n');
    await rig.advance(5000);
    const stats = rig.on('$SYS/outpost/serial/boiler/stats').map((s) => JSON.parse(s) as Record<string, unknown>);
    expect(stats.at(-1)).toMatchObject({ online: true, frames: 1, readings: 2, published: 2, reopens: 0 });
  });

  it('stops cleanly: offline state, no timers left, the port closed', async () => {
    rig = await startHost(serialConfig(['devices:', jsonDevice('boiler', '/dev/ttyUSB0'), jsonDevice('gone', '/dev/ttyUSB9')].join('\n')));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    await rig.host.stop();
    expect(rig.on('$SYS/outpost/serial/boiler/state').at(-1)).toBe('offline');
    expect(rig.clock.pending).toBe(0);
    expect(rig.ports.isOpen('/dev/ttyUSB0')).toBe(false);
  });
});
