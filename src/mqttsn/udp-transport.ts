/**
 * MQTT-SN over UDP (IPv4 and IPv6): the only module of the gateway that imports
 * node:dgram. One socket per configured address; all share one port (the first bound
 * picks it when 0 is configured). Datagrams above the size bound are dropped here.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import type { BoundAddress, DatagramHandler, DatagramPeer, DatagramTransport } from './transport.js';

export interface UdpTransportOptions {
  hosts: readonly string[];
  port: number;
  maxDatagramSize: number;
  broadcastAddress: string;
  broadcastPort: number;
  /** Called for each datagram over maxDatagramSize (counted by the gateway). */
  onOversized?: (from: DatagramPeer, size: number) => void;
}

function isMulticast(address: string): boolean {
  if (isIP(address) === 4) {
    const first = Number(address.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return address.toLowerCase().startsWith('ff');
}

export class UdpTransport implements DatagramTransport {
  private sockets: { socket: dgram.Socket; family: 'IPv4' | 'IPv6' }[] = [];
  private errors = 0;

  constructor(
    private readonly options: UdpTransportOptions,
    private readonly log: Logger,
  ) {}

  get addresses(): BoundAddress[] {
    return this.sockets.map(({ socket, family }) => {
      const a = socket.address();
      return { host: a.address, port: a.port, family };
    });
  }

  get sendErrors(): number {
    return this.errors;
  }

  async start(onDatagram: DatagramHandler): Promise<void> {
    let port = this.options.port;
    try {
      for (const host of this.options.hosts) {
        const family = isIP(host) === 6 ? 'IPv6' : 'IPv4';
        // ipv6Only: "::" must not also take the IPv4 port that "0.0.0.0" binds.
        const socket = dgram.createSocket({ type: family === 'IPv6' ? 'udp6' : 'udp4', ipv6Only: family === 'IPv6', reuseAddr: false });
        await this.bind(socket, host, port);
        port = socket.address().port;
        try {
          socket.setRecvBufferSize(4 * 1024 * 1024); // bursts from many sensors at once
        } catch {
          // the kernel cap (net.core.rmem_max) applies; the default still works
        }
        if (family === 'IPv4') socket.setBroadcast(true);
        socket.on('message', (buf, rinfo) => {
          const from = { address: rinfo.address, port: rinfo.port };
          if (buf.length > this.options.maxDatagramSize) this.options.onOversized?.(from, buf.length);
          else onDatagram(buf, from);
        });
        socket.on('error', (err) => this.log.warn({ err, host }, 'mqtt-sn socket error'));
        this.sockets.push({ socket, family });
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    for (const a of this.addresses) this.log.info({ host: a.host, port: a.port }, 'mqtt-sn listener ready');
  }

  private bind(socket: dgram.Socket, host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        const what = err.code === 'EADDRINUSE' ? 'is already in use; stop the other program or change mqttsn.port'
          : err.code === 'EACCES' ? 'needs privileges; use a port above 1023'
          : err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT' ? 'is not an address of this machine; fix mqttsn.hosts'
          : `cannot be bound (${err.code ?? err.message})`;
        reject(new OutpostError('MQTTSN_PROTOCOL', `MQTT-SN UDP ${host.includes(':') ? `[${host}]` : host}:${port} ${what}`, { cause: err }));
      });
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        resolve();
      });
    });
  }

  send(buf: Buffer, to: DatagramPeer): void {
    const family = isIP(to.address) === 6 ? 'IPv6' : 'IPv4';
    const s = this.sockets.find((x) => x.family === family)?.socket;
    if (s === undefined) {
      this.errors++;
      return;
    }
    s.send(buf, to.port, to.address, (err) => {
      if (err) this.errors++;
    });
  }

  broadcast(buf: Buffer, radius: number): void {
    const address = this.options.broadcastAddress;
    const family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
    const s = this.sockets.find((x) => x.family === family)?.socket;
    if (s === undefined) {
      this.errors++;
      return;
    }
    if (isMulticast(address)) {
      try {
        // The radius is a hop count (§5.4.2): the IP equivalent is the multicast TTL.
        s.setMulticastTTL(Math.max(1, Math.min(255, radius)));
      } catch {
        this.errors++;
      }
    }
    s.send(buf, this.options.broadcastPort, address, (err) => {
      if (err) this.errors++;
    });
  }

  async stop(): Promise<void> {
    const list = this.sockets;
    this.sockets = [];
    await Promise.all(list.map(({ socket }) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  }
}
