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

  it('says a pty is present while its other end lives, and gone once it was killed (its node removed)', async () => {
    lab = new PtyLab();
    const pty = await lab.pty('ttyGone');
    const port = await serialportOpener.open(pty.path, line);
    expect(await serialportOpener.present!(pty.path)).toBe(true);
    await pty.unplug();
    expect(await serialportOpener.present!(pty.path)).toBe(false);
    expect(await serialportOpener.present!('/dev/outpost-no-such-port')).toBe(false);
    port.destroy();
  });

  it('closes the port itself on destroy(), so no fd, poller or read loop outlives the stream', async () => {
    lab = new PtyLab();
    const pty = await lab.pty('ttyDestroy');
    const port = await serialportOpener.open(pty.path, line);
    const binding = (port as unknown as { port?: { isOpen: boolean } }).port!;
    expect(binding.isOpen).toBe(true);
    await new Promise((r) => port.once('close', r).destroy());
    expect(binding.isOpen).toBe(false);
    // The adapter is free again: a second open succeeds (the lock went with the fd).
    const again = await serialportOpener.open(pty.path, line);
    await new Promise((r) => again.once('close', r).destroy());
  });

  it('locks the port: a second open fails instead of stealing bytes', async () => {
    lab = new PtyLab();
    const pty = await lab.pty('ttyLocked');
    const port = await serialportOpener.open(pty.path, line);
    await expect(serialportOpener.open(pty.path, line)).rejects.toThrow(/lock/i);
    await new Promise((r) => port.once('close', r).destroy());
  });

  it('holds at most its read-ahead while paused, then delivers every byte in order once resumed', async () => {
    lab = new PtyLab();
    const pty = await lab.pty('ttyPaused');
    const port = await serialportOpener.open(pty.path, line);
    const chunks: Buffer[] = [];
    port.on('data', (b: Buffer) => chunks.push(b));
    port.pause();
    const total = 256 * 1024;
    const data = Buffer.alloc(total);
    for (let i = 0; i < total; i++) data[i] = i % 253;
    const writing = pty.write(data); // socat blocks on the full pty; the socket backs up behind it
    await new Promise((r) => setTimeout(r, 300));
    expect(chunks).toHaveLength(0);
    expect(port.readableLength).toBeGreaterThan(0); // it did read ahead…
    expect(port.readableLength).toBeLessThanOrEqual(64 * 1024); // …but only its read-ahead, not the 256 KiB
    port.resume();
    await writing;
    const deadline = Date.now() + 5000;
    while (chunks.reduce((a, c) => a + c.length, 0) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
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
