/**
 * What the driver host needs from the operating system's serial ports, as an interface so the
 * host never imports serialport (port-adapter.ts does) and tests hand it in-memory streams.
 */
import type { Duplex } from 'node:stream';
import type { UsbMatch } from '../config/serial-schema.js';
import type { LineSettings } from './driver-api.js';

export interface PortInfo {
  path: string;
  vendorId?: string;
  productId?: string;
  serialNumber?: string;
}

export interface PortOpener {
  /** Opens the port with these line settings; the stream emits 'close' when the port is lost. */
  open(path: string, line: LineSettings): Promise<Duplex>;
  /** The serial ports present now (for USB matches). */
  list(): Promise<PortInfo[]>;
  /**
   * Whether the port's device node is still there (false once a USB adapter is pulled and
   * udev removed its node, or a pseudo-terminal's other end closed). Optional: without it
   * the link relies on the stream's 'close' alone.
   */
  present?(path: string): Promise<boolean>;
}

const hex = (s: string | undefined) => (s === undefined ? undefined : parseInt(s.replace(/^0x/i, ''), 16));

/** The path of the port a config names, or undefined when no present port matches. */
export async function resolvePort(port: string | UsbMatch, opener: PortOpener): Promise<string | undefined> {
  if (typeof port === 'string') return port;
  const ports = await opener.list();
  const found = ports.find(
    (p) =>
      hex(p.vendorId) === hex(port.vendor_id) &&
      hex(p.productId) === hex(port.product_id) &&
      (port.serial_number === undefined || p.serialNumber === port.serial_number),
  );
  return found?.path;
}

export function describePort(port: string | UsbMatch): string {
  if (typeof port === 'string') return port;
  return `usb ${port.vendor_id}:${port.product_id}${port.serial_number ? ` serial ${port.serial_number}` : ''}`;
}
