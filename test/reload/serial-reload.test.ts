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
