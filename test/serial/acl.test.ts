import { afterEach, describe, expect, it } from 'vitest';
import { settle } from '../helpers/memory-ports.js';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('serial readings under an ACL with serial sections', () => {
  it('publish only the topics the device may write; the rest are dropped, counted and logged once', async () => {
    rig = await startHost(serialConfig('devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }'), {
      acl: 'serial boiler\nwrite sensors/%c/temp\n',
    });
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":215,"heater":true}\n{"temp":216,"heater":false}\n');
    await settle();
    expect(rig.on('sensors/boiler/temp')).toHaveLength(2);
    expect(rig.on('sensors/boiler/heater')).toEqual([]);
    expect(rig.host.counters('boiler')).toMatchObject({ readings: 4, published: 2, denied: 2 });
    // The device's own state topic is not a reading and is never refused.
    expect(rig.on('$SYS/outpost/serial/boiler/state')).toEqual(['offline', 'online']);
    expect(rig.logs.filter((l) => l.msg === 'reading denied by the ACL').length).toBeGreaterThanOrEqual(1);
  });

  it('are not checked when the ACL file has no serial section', async () => {
    rig = await startHost(serialConfig('devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }'), { acl: 'user alice\nread #\n' });
    rig.ports.plug('/dev/ttyUSB0');
    await rig.advance(1000);
    rig.ports.device('/dev/ttyUSB0').write('{"temp":215}\n');
    await settle();
    expect(rig.on('sensors/boiler/temp')).toHaveLength(1);
  });
});
