/**
 * A port another program holds (serialport's lock): here a second device of the config naming
 * the same pty by another path, as a /dev/serial/by-id/ link and its /dev/tty name are. The
 * device that lost the race logs one error sentence that says what holds the port and what to
 * do (not serialport's "Resource temporarily unavailable Cannot lock port"), the gateway keeps
 * running, and the first device streams.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SerialSite } from '../helpers/serial-site.js';

let site: SerialSite | undefined;
afterEach(async () => {
  await site?.dispose();
  site = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a serial port held by someone else', () => {
  it('logs an error that says the port is in use and what to do, while the device holding it streams', async () => {
    site = new SerialSite();
    const pty = await site.lab.pty('usb-Prolific-if00-port0');
    const alias = join(site.lab.dir, 'ttyUSB0');
    symlinkSync(pty.path, alias);
    const gateway = await site.start([
      '  reopen: { base: 100ms, cap: 200ms }',
      '  devices:',
      `    - { id: first, port: ${pty.path}, driver: line-kv }`,
      `    - { id: second, port: ${alias}, driver: line-kv }`,
    ]);
    const logs = site.logs;
    const deadline = Date.now() + 5000;
    while (!logs.some((l) => l.level === 50) && Date.now() < deadline) await sleep(20);

    const online = ['first', 'second'].filter((id) => gateway.serial.isOnline(id));
    expect(online).toHaveLength(1);
    const loser = online[0] === 'first' ? alias : pty.path;
    const error = logs.find((l) => l.level === 50);
    expect(error?.msg).toBe(
      `serial port unavailable, retrying: ${loser} is in use by another program, or by another device of this config under another path ` +
        '(a /dev/serial/by-id/ link and its /dev/tty name are one port): stop that program or remove one of the two devices',
    );
    await pty.write('kwh=1\n');
    const winner = online[0]!;
    while (gateway.serial.counters(winner)!.readings < 1 && Date.now() < deadline + 2000) await sleep(20);
    expect(gateway.serial.counters(winner)!.readings).toBe(1);
  }, 20_000);
});
