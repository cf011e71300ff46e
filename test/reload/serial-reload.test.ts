/**
 * The driver host applies a reloaded `serial:` section: only the ports whose devices changed
 * restart; the others keep their open port and go on publishing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const device = (id: string, port: string, extra = '') => `  - { id: ${id}, port: ${port}, driver: line-json${extra} }`;
const config = (...devices: string[]) => serialConfig(['devices:', ...devices].join('\n'));

async function online(r: HostRig, ...paths: string[]): Promise<void> {
  for (const p of paths) r.ports.plug(p);
  await r.advance(1000);
}

describe('serial host reload', () => {
  it('starts a device added by a reload, which then publishes, while the running one keeps its open port', async () => {
    rig = await startHost(config(device('boiler', '/dev/ttyUSB0')));
    await online(rig, '/dev/ttyUSB0');
    const boilerLink = rig.host.linkOf('boiler');

    const changes = await rig.host.reload(config(device('boiler', '/dev/ttyUSB0'), device('meter', '/dev/ttyUSB1')));
    expect(changes).toEqual(['serial device meter added']);
    await online(rig, '/dev/ttyUSB1');
    rig.ports.device('/dev/ttyUSB1').write('{"kwh":12}\n');
    rig.ports.device('/dev/ttyUSB0').write('{"temp":20}\n');
    await settle();
    expect(rig.on('sensors/meter/kwh').map((p) => JSON.parse(p).value)).toEqual([12]);
    expect(rig.on('sensors/boiler/temp').map((p) => JSON.parse(p).value)).toEqual([20]);
    expect(rig.host.linkOf('boiler')).toBe(boilerLink);
    expect(rig.ports.opened.filter((o) => o.path === '/dev/ttyUSB0')).toHaveLength(1);
  });

  it('restarts only the changed device with its new settings, and stops a removed one (offline, then its retained state cleared)', async () => {
    rig = await startHost(config(device('boiler', '/dev/ttyUSB0'), device('meter', '/dev/ttyUSB1'), device('pump', '/dev/ttyUSB2')));
    await online(rig, '/dev/ttyUSB0', '/dev/ttyUSB1', '/dev/ttyUSB2');
    const boilerLink = rig.host.linkOf('boiler');
    const meterLink = rig.host.linkOf('meter');

    const changes = await rig.host.reload(config(device('boiler', '/dev/ttyUSB0'), device('meter', '/dev/ttyUSB1', ', baud: 19200, topic: "power/{device}/{metric}"')));
    expect(changes.sort()).toEqual(['serial device meter restarted', 'serial device pump removed']);
    await rig.advance(1000);
    expect(rig.host.linkOf('boiler')).toBe(boilerLink);
    expect(rig.host.linkOf('meter')).not.toBe(meterLink);
    expect(rig.ports.opened.filter((o) => o.path === '/dev/ttyUSB1').map((o) => o.line.baud)).toEqual([9600, 19200]);
    expect(rig.ports.isOpen('/dev/ttyUSB2')).toBe(false);
    // Live subscribers see it go offline; one connecting later finds no device that is gone.
    expect(rig.on('$SYS/outpost/serial/pump/state').slice(-2)).toEqual(['offline', '']);
    expect(rig.broker.retainedFor('$SYS/outpost/serial/pump/#')).toEqual([]);
    expect(rig.broker.retainedFor('$SYS/outpost/serial/meter/state').map((m) => m.payload.toString())).toEqual(['online']);
    expect(rig.host.deviceIds.sort()).toEqual(['boiler', 'meter']);

    rig.ports.device('/dev/ttyUSB1').write('{"kwh":7}\n');
    await settle();
    expect(rig.on('power/meter/kwh').map((p) => JSON.parse(p).value)).toEqual([7]);
  });

  it('carries on the counters of a device restarted with changed settings, so each only rises and keeps counting', async () => {
    const meter = (extra = '') => device('meter', '/dev/ttyUSB0', `, metrics: { kwh: { deadband: 5 } }${extra}`);
    rig = await startHost(config(meter()));
    await online(rig, '/dev/ttyUSB0');
    const r = rig;
    const reopen = async () => {
      r.ports.unplug('/dev/ttyUSB0');
      await settle();
      await online(r, '/dev/ttyUSB0');
    };
    // 11 is held back by the deadband; the last line is no JSON.
    r.ports.device('/dev/ttyUSB0').write('{"kwh":10}\n{"kwh":11}\nnot json\n');
    await settle();
    await reopen();
    const before = { ...r.host.counters('meter')! };
    expect(before).toMatchObject({ frames: 3, readings: 2, published: 1, held_back: 1, decode_failures: 1, reopens: 1 });

    expect(await r.host.reload(config(meter(', baud: 19200')))).toEqual(['serial device meter restarted']);
    await online(r, '/dev/ttyUSB0');
    expect(r.ports.opened.at(-1)!.line.baud).toBe(19200);
    // Nothing dropped with the restart: not the plain counts, nor those read from the new link and mapper.
    expect(r.host.counters('meter')).toEqual(before);
    const retained = () => JSON.parse(r.broker.retainedFor('$SYS/outpost/serial/meter/stats')[0]!.payload.toString()) as Record<string, unknown>;
    expect(retained()).toMatchObject(before);

    // And they go on from there.
    r.ports.device('/dev/ttyUSB0').write('{"kwh":20}\n{"kwh":21}\n');
    await settle();
    await reopen();
    const after = { frames: 5, readings: 4, published: 2, held_back: 2, decode_failures: 1, reopens: 2 };
    expect(r.host.counters('meter')).toMatchObject(after);
    expect(retained()).toMatchObject(after);
    for (const [k, v] of Object.entries(before)) expect(r.host.counters('meter')![k as keyof typeof before], k).toBeGreaterThanOrEqual(v);
  });

  it('starts the counters of a device removed and later added back from 0, as a new device', async () => {
    rig = await startHost(config(device('boiler', '/dev/ttyUSB0')));
    await online(rig, '/dev/ttyUSB0');
    rig.ports.device('/dev/ttyUSB0').write('{"temp":20}\n');
    await settle();
    expect(rig.host.counters('boiler')).toMatchObject({ frames: 1, readings: 1 });
    expect(await rig.host.reload(serialConfig('devices: []'))).toEqual(['serial device boiler removed']);
    expect(await rig.host.reload(config(device('boiler', '/dev/ttyUSB0')))).toEqual(['serial device boiler added']);
    await online(rig, '/dev/ttyUSB0');
    expect(rig.host.counters('boiler')).toMatchObject({ frames: 0, readings: 0, published: 0, reopens: 0 });
  });

  it('changes nothing when the devices are the same', async () => {
    rig = await startHost(config(device('boiler', '/dev/ttyUSB0')));
    await online(rig, '/dev/ttyUSB0');
    const link = rig.host.linkOf('boiler');
    expect(await rig.host.reload(config(device('boiler', '/dev/ttyUSB0')))).toEqual([]);
    expect(rig.host.linkOf('boiler')).toBe(link);
  });

  it('restarts every device when a host setting such as the state prefix changes', async () => {
    rig = await startHost(config(device('boiler', '/dev/ttyUSB0')));
    await online(rig, '/dev/ttyUSB0');
    const next = serialConfig(['state_prefix: site/serial', 'devices:', device('boiler', '/dev/ttyUSB0')].join('\n'));
    expect(await rig.host.reload(next)).toEqual(['serial device boiler restarted']);
    await rig.advance(1000);
    expect(rig.on('site/serial/boiler/state').at(-1)).toBe('online');
    // Nothing retained is left under the old prefix.
    expect(rig.broker.retainedFor('$SYS/outpost/serial/#')).toEqual([]);
    expect(rig.broker.retainedFor('site/serial/boiler/state').map((m) => m.payload.toString())).toEqual(['online']);
  });
});
