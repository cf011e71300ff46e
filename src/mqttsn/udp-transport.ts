/**
 * MQTT-SN over UDP (IPv4 and IPv6): the only module of the gateway that imports
 * node:dgram. One socket per configured address; all share one port (the first bound
 * picks it when 0 is configured). Datagrams above the size bound are dropped here.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { systemClock } from '../core/clock.js';
import { OutpostError } from '../core/errors.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
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

/**
 * dgram's lookup for the addresses it is given: IP literals (a sensor's source address, the
 * configured broadcast address) answer at once; anything else goes to dns.lookup. The
 * default lookup defers even a literal's answer to the next tick, once per datagram sent.
 */
function literalLookup(address: string, family: dns.LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const v = isIP(address);
  if (v !== 0) callback(null, address, v);
  else dns.lookup(address, family, callback); // dgram passes the family as 4 or 6, which dns.lookup takes too
}

export class UdpTransport implements DatagramTransport {
  private sockets: { socket: dgram.Socket; family: 'IPv4' | 'IPv6' }[] = [];
  private v4: dgram.Socket | undefined;
  private v6: dgram.Socket | undefined;
  private errors = 0;
  private readonly errorLog = new LogRateLimiter(systemClock);

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
        const socket = dgram.createSocket({ type: family === 'IPv6' ? 'udp6' : 'udp4', ipv6Only: family === 'IPv6', reuseAddr: false, lookup: literalLookup });
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
        socket.on('error', (err) => {
          const suppressed = this.errorLog.take(host);
          if (suppressed >= 0) this.log.warn({ err, host, suppressed }, 'mqtt-sn socket error');
        });
        this.sockets.push({ socket, family });
        if (family === 'IPv4') this.v4 = socket;
        else this.v6 = socket;
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    for (const a of this.addresses) this.log.info({ host: a.host, port: a.port }, 'mqtt-sn listener ready');
    if (this.socketFor(this.options.broadcastAddress) === undefined) {
      // Otherwise every ADVERTISE and broadcast GWINFO (§6.1) would fail unseen, one counted send error each.
      this.log.warn(
        { address: this.options.broadcastAddress, hosts: this.options.hosts },
        `mqtt-sn ADVERTISE and broadcast GWINFO cannot be sent: mqttsn.hosts binds no ${isIP(this.options.broadcastAddress) === 6 ? 'IPv6' : 'IPv4'} address for mqttsn.advertise.address; bind one or change the address`,
      );
    }
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

  /**
   * One datagram to a sensor. The address is the literal a datagram came from, so the
   * lookup (literalLookup) answers at once, and every send shares one callback that counts
   * failures (dgram reports a failed send only to a callback).
   */
  send(buf: Buffer, to: DatagramPeer): void {
    const s = this.socketFor(to.address);
    if (s === undefined) {
      this.errors++;
      return;
    }
    s.send(buf, to.port, to.address, this.sent);
  }

  private readonly sent = (err: Error | null): void => {
    if (err) this.errors++;
  };

  /** The socket of the address's family (an IP literal: a sensor's, or the broadcast address). */
  private socketFor(address: string): dgram.Socket | undefined {
    return address.includes(':') ? this.v6 : this.v4;
  }

  broadcast(buf: Buffer, radius: number): void {
    const address = this.options.broadcastAddress;
    const s = this.socketFor(address);
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
    s.send(buf, this.options.broadcastPort, address, this.sent);
  }

  async stop(): Promise<void> {
    const list = this.sockets;
    this.sockets = [];
    this.v4 = this.v6 = undefined;
    await Promise.all(list.map(({ socket }) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  }
}
