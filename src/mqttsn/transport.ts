/**
 * What the MQTT-SN gateway needs from a datagram link. The UDP transport implements it
 * over node:dgram; tests may hand the gateway any other implementation.
 */
export interface DatagramPeer {
  address: string;
  port: number;
}

export interface BoundAddress {
  host: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export type DatagramHandler = (buf: Buffer, from: DatagramPeer) => void;

export interface DatagramTransport {
  start(onDatagram: DatagramHandler): Promise<void>;
  /** Fire and forget: UDP has no delivery guarantee, and errors are counted, not thrown. */
  send(buf: Buffer, to: DatagramPeer): void;
  /**
   * To every client in reach (ADVERTISE, GWINFO, §6.1). `radius` is the MQTT-SN broadcast
   * radius in hops; on IP it becomes the multicast TTL when the address is a multicast group.
   */
  broadcast(buf: Buffer, radius: number): void;
  stop(): Promise<void>;
  readonly addresses: BoundAddress[];
  /** Send failures so far (unreachable networks, full buffers). */
  readonly sendErrors: number;
}
