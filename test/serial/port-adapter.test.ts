/** The serialport adapter on real pseudo-terminals (socat). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serialportOpener } from '../../src/serial/port-adapter.js';
import { PtyLab } from '../helpers/pty.js';

const line = { baud: 9600, dataBits: 8, parity: 'none', stopBits: 1 } as const;
let lab: PtyLab | undefined;
afterEach(async () => {
  await lab?.cleanup();
  lab = undefined;
});

describe('serialport adapter', () => {
  it('opens a port, reads what the device sends, and writes to it', async () => {
    lab = new PtyLab();
    const pty = await lab.pty('ttyTest');
    const port = await serialportOpener.open(pty.path, line);
    const got = new Promise<string>((resolve) => port.once('data', (b: Buffer) => resolve(b.toString())));
    await pty.write('hello\n');
    expect(await got).toBe('hello\n');
    port.write('cmd\n');
    await pty.waitReceived('cmd\n');
    await new Promise((r) => port.once('close', r).destroy());
  });

  it('locks the port: a second open fails instead of stealing bytes', async () => {
    lab = new PtyLab();
    const pty = await lab.pty('ttyLocked');
    const port = await serialportOpener.open(pty.path, line);
    await expect(serialportOpener.open(pty.path, line)).rejects.toThrow(/lock/i);
    await new Promise((r) => port.once('close', r).destroy());
  });

  it('rejects a missing port with the path in the message', async () => {
    await expect(serialportOpener.open('/dev/serial/by-id/usb-nothing-here', line)).rejects.toThrow(/usb-nothing-here/);
  });

  it('says what to do when USB ports cannot be listed because udevadm is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'outpost-nopath-'));
    const path = process.env['PATH'];
    process.env['PATH'] = empty;
    try {
      await expect(serialportOpener.list()).rejects.toThrow('cannot list USB serial ports: udevadm is not installed; install udev or name the port by its /dev/serial/by-id/ path');
    } finally {
      process.env['PATH'] = path;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
