/**
 * A reload that changes only device maps (scale, unit, topic…) keeps the port open: the bytes
 * on their way are not dropped with a closed port. A line half-read at the reload is published
 * whole under the new map; before, it was cut (and at 1 MB/s the stream's read-ahead of 600
 * lines was lost with it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const boiler = (map: string) => serialConfig(['devices:', `  - { id: boiler, port: /dev/ttyUSB0, driver: line-json, ${map} }`].join('\n'));

describe('a reload that changes only a device map', () => {
  it('keeps the port open: a line half-read at the reload is published whole with the new scale and topic', async () => {
    rig = await startHost(boiler('metrics: { temp: { scale: 1 } }'));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    // One reopen first, so a double-counted one would show.
    rig.ports.unplug('/dev/ttyUSB0');
    await settle();
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":200}\n{"temp":2');
    await settle();

    const changes = await rig.host.reload(boiler('topic: "v2/{device}/{metric}", metrics: { temp: { scale: 0.1, unit: "°C" } }'));
    expect(changes).toEqual(['serial device boiler changed (its port stays open)']);
    rig.ports.device('/dev/ttyUSB0').write('15}\n');
    await settle();

    expect(rig.on('sensors/boiler/temp').map((p) => JSON.parse(p).value)).toEqual([200]);
    expect(rig.on('v2/boiler/temp').map((p) => JSON.parse(p))).toMatchObject([{ value: 21.5, unit: '°C' }]);
    expect(rig.ports.opened).toHaveLength(2); // the first open and the replug, none for the reload
    expect(rig.host.counters('boiler')).toMatchObject({ frames: 2, readings: 2, published: 2, decode_failures: 0, discarded_bytes: 0, reopens: 1 });
    // It stayed online: no offline between the replug and the new map.
    expect(rig.on('$SYS/outpost/serial/boiler/state').slice(-2)).toEqual(['online', 'online']);
    expect(rig.host.isOnline('boiler')).toBe(true);
  });

  it('keeps every port open when only stats_interval changes, and publishes the counters at the new interval', async () => {
    rig = await startHost(serialConfig(['stats_interval: 60s', 'devices:', '  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }'].join('\n')));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":2');
    await settle();
    const next = serialConfig(['stats_interval: 5s', 'devices:', '  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }'].join('\n'));
    expect(await rig.host.reload(next)).toEqual([]);
    rig.ports.device('/dev/ttyUSB0').write('15}\n');
    await settle();
    expect(rig.on('sensors/boiler/temp').map((p) => JSON.parse(p).value)).toEqual([215]);
    expect(rig.ports.opened).toHaveLength(1);
    const stats = rig.on('$SYS/outpost/serial/boiler/stats').length;
    await rig.advance(5000);
    expect(rig.on('$SYS/outpost/serial/boiler/stats').length).toBe(stats + 1);
  });

  it('still reopens the port when its line settings change', async () => {
    rig = await startHost(boiler('baud: 9600'));
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    expect(await rig.host.reload(boiler('baud: 19200'))).toEqual(['serial device boiler restarted']);
    await rig.advance(1000);
    expect(rig.ports.opened.map((o) => o.line.baud)).toEqual([9600, 19200]);
  });
});
