/**
 * `outpost check devices.yaml` on a device map file instead of the config that includes it:
 * the message says how a device map is checked, not only that "devices" is no config key.
 */
import { describe, expect, it } from 'vitest';
import { isOutpostError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';

describe('a device map file checked as a config', () => {
  it('is told to be checked through the config that includes it', () => {
    let message = '';
    try {
      parseConfigText('devices:\n  - { id: boiler, port: /dev/ttyUSB0, driver: line-json }\n', 'devices.yaml');
    } catch (err) {
      if (!isOutpostError(err, 'CONFIG_INVALID')) throw err;
      message = err.message;
    }
    expect(message).toBe(
      'devices.yaml:1:1 devices: unknown key "devices": a device map file is checked through the config that includes it (serial.include), or list the devices under serial.devices',
    );
  });
});
