/**
 * The only module that imports serialport. It is loaded on the first open or list, so a
 * gateway without serial devices never loads the native binding.
 *
 * serialport's stream emits 'close' (with err.disconnected) when a USB adapter is pulled and
 * 'error' on I/O failures; the PortLink treats both as a lost port and reopens with backoff.
 * Not every loss shows on the stream (a pseudo-terminal whose other end died was once
 * missed for over 15 s), so the link also checks that the device node is still there.
 */
import { stat } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type { LineSettings } from './driver-api.js';
import type { PortInfo, PortOpener } from './port.js';

type SerialPortModule = typeof import('serialport');
let loaded: Promise<SerialPortModule> | undefined;
const serialport = () => (loaded ??= import('serialport'));

/** Bytes read ahead of the framer; small, since the framer bounds what we keep anyway. */
const READ_HIGH_WATER_MARK = 16 * 1024;

export const serialportOpener: PortOpener = {
  async open(path: string, line: LineSettings): Promise<Duplex> {
    const { SerialPort } = await serialport();
    const port = new SerialPort({
      path,
      baudRate: line.baud,
      dataBits: line.dataBits,
      parity: line.parity,
      stopBits: line.stopBits,
      autoOpen: false,
      // An exclusive lock (TIOCEXCL): a second process on the same adapter fails to open instead of stealing bytes.
      lock: true,
      highWaterMark: READ_HIGH_WATER_MARK,
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    // serialport's stream has no _destroy: destroy() ended the stream and left the port open,
    // its fd and poller alive. On a tty that was hung up (a pty whose other end died) its
    // read loop then spins for ever, since every read returns 0 bytes: a core and megabytes
    // per second, seen in the soak. destroy() closes the port itself here.
    port._destroy = (err, callback) => {
      const binding = port.port;
      if (binding === undefined || !binding.isOpen) return callback(err);
      binding.close().then(
        () => callback(err),
        (closeErr: unknown) => callback(err ?? (closeErr as Error)),
      );
    };
    return port;
  },

  async present(path: string): Promise<boolean> {
    try {
      await stat(path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code !== 'ENOENT' && code !== 'ENOTDIR'; // only a missing node means the device is gone
    }
  },

  async list(): Promise<PortInfo[]> {
    const { SerialPort } = await serialport();
    // On Linux this runs `udevadm info -e`; its failure (no udev) rejects, and the link retries.
    let ports: Awaited<ReturnType<typeof SerialPort.list>>;
    try {
      ports = await SerialPort.list();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error('cannot list USB serial ports: udevadm is not installed; install udev or name the port by its /dev/serial/by-id/ path', { cause: err });
      }
      throw err;
    }
    return ports.map((p) => ({ path: p.path, vendorId: p.vendorId, productId: p.productId, serialNumber: p.serialNumber }));
  },
};
