/**
 * Serial ports in memory for driver host tests: plug and unplug devices by path, and talk
 * to the device side of an open port. The host side is a plain duplex, like serialport's.
 */
import { duplexPair, type Duplex } from 'node:stream';
import type { LineSettings } from '../../src/serial/driver-api.js';
import type { PortInfo, PortOpener } from '../../src/serial/port.js';

export class MemoryPorts implements PortOpener {
  private readonly plugged = new Map<string, PortInfo>();
  /** Paths whose open fails as for a user outside group dialout. */
  readonly denied = new Set<string>();
  private readonly devices = new Map<string, Duplex>();
  readonly opened: { path: string; line: LineSettings }[] = [];
  listCalls = 0;

  plug(path: string, usb: Omit<PortInfo, 'path'> = {}): void {
    this.plugged.set(path, { path, ...usb });
  }

  /** The port disappears: an open stream errors and closes, like a pulled USB adapter. */
  unplug(path: string): void {
    this.plugged.delete(path);
    const dev = this.devices.get(path);
    this.devices.delete(path);
    dev?.destroy();
  }

  /** The port's node disappears but its open stream says nothing (a close event that never came). */
  vanish(path: string): void {
    this.plugged.delete(path);
  }

  async present(path: string): Promise<boolean> {
    return this.plugged.has(path);
  }

  /** The device end of the open port at `path` (write what the device sends, read what it receives). */
  device(path: string): Duplex {
    const d = this.devices.get(path);
    if (d === undefined) throw new Error(`${path} is not open`);
    return d;
  }

  isOpen(path: string): boolean {
    return this.devices.has(path);
  }

  async open(path: string, line: LineSettings): Promise<Duplex> {
    if (!this.plugged.has(path)) throw Object.assign(new Error(`Error: No such file or directory, cannot open ${path}`), { code: 'ENOENT' });
    if (this.devices.has(path)) throw new Error(`Error Resource temporarily unavailable Cannot lock port`);
    // As @serialport/bindings-cpp words it (strerror, no code).
    if (this.denied.has(path)) throw new Error(`Error: Permission denied, cannot open ${path}`);
    const [host, device] = duplexPair();
    host.once('close', () => {
      device.destroy();
      if (this.devices.get(path) === device) this.devices.delete(path);
    });
    device.once('close', () => host.destroy(new Error('disconnected')));
    this.devices.set(path, device);
    this.opened.push({ path, line });
    return host;
  }

  async list(): Promise<PortInfo[]> {
    this.listCalls++;
    return [...this.plugged.values()];
  }
}

/** Lets pending promise callbacks and stream events run (fake clock tests). */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
