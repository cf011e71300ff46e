/**
 * Running without access to a serial port (the user is not in group dialout): one error line
 * that says what to do, the gateway keeps running, and the device comes online by itself once
 * access is granted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serialConfig, startHost, type HostRig } from '../helpers/serial-host.js';

let rig: HostRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('a serial port the user may not open', () => {
  it('logs one clear error naming the port and group dialout, keeps retrying, and opens once allowed', async () => {
    rig = await startHost(serialConfig(['reopen: { base: 1s, cap: 1s }', 'devices:', '  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }'].join('\n')));
    rig.ports.plug('/dev/ttyUSB0');
    rig.ports.denied.add('/dev/ttyUSB0');
    for (let i = 0; i < 5; i++) await rig.advance(1000);
    const errors = rig.logs.filter((l) => l.level === 50);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]!.msg).toBe(
      'serial port unavailable, retrying: no permission to open /dev/ttyUSB0: add the user running outpost to group dialout ' +
        '(usermod -aG dialout USER, then restart outpost; the systemd unit has SupplementaryGroups=dialout)',
    );
    expect(rig.host.isOnline('boiler')).toBe(false);
    rig.ports.denied.delete('/dev/ttyUSB0');
    await rig.advance(1000);
    expect(rig.host.isOnline('boiler')).toBe(true);
  });
});
