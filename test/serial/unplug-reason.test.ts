/**
 * Pulling the adapter (socat killed under the open pty): the log says why the port was lost.
 * serialport closes the stream with an error marked `disconnected`, whose message is the
 * failed read's, "bad file descriptor": that alone used to be the reason logged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SerialSite } from '../helpers/serial-site.js';

let site: SerialSite | undefined;
afterEach(async () => {
  await site?.dispose();
  site = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a pulled serial adapter', () => {
  it('is logged as lost because it was disconnected, not with the bare error of the failed read', async () => {
    site = new SerialSite();
    const pty = await site.lab.pty('usb-FTDI_FT232R-if00-port0');
    const gateway = await site.start(['  reopen: { base: 5s, cap: 5s }', '  devices:', `    - { id: boiler, port: ${pty.path}, driver: line-json }`]);
    const logs = site.logs;
    for (let i = 0; i < 250 && !gateway.serial.isOnline('boiler'); i++) await sleep(20);
    expect(gateway.serial.isOnline('boiler')).toBe(true);

    await pty.unplug();
    for (let i = 0; i < 500 && !logs.some((l) => l.msg === 'serial port lost'); i++) await sleep(20);
    expect(logs.find((l) => l.msg === 'serial port lost')?.reason).toMatch(new RegExp(`^${pty.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( is gone \\(the adapter was unplugged\\)| was disconnected, as when the adapter is unplugged \\(.+\\))$`));
  }, 20_000);
});
