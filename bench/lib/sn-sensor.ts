// A simulated MQTT-SN sensor for the benchmark: one UDP socket (its own address and port,
// like a real sensor), CONNECT, REGISTER, and PUBLISH QoS 0/1 with PUBACK timing.
import dgram from 'node:dgram';
import { decode } from '../../src/mqttsn/decode.js';
import { encode } from '../../src/mqttsn/encode.js';
import { MsgType, type Packet, type SnQoS } from '../../src/mqttsn/packets.js';

export class Sensor {
  private waiting: { type: number; resolve: (p: Packet) => void } | undefined;
  private msgId = 1;
  /** Set for a QoS 1 publish in flight: when it was sent (hrtime ns). */
  private sentAt = 0n;
  onPuback: ((latencyNs: bigint, returnCode: number) => void) | undefined;
  topicId = 0;
  topicIdType: 0 | 1 = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly port: number,
    readonly clientId: string,
  ) {
    socket.on('message', (buf) => this.onMessage(buf));
  }

  static open(port: number, clientId: string): Promise<Sensor> {
    const socket = dgram.createSocket('udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve(new Sensor(socket, port, clientId)));
    });
  }

  private onMessage(buf: Buffer): void {
    const d = decode(buf);
    if (!d.ok) return;
    const p = d.packet;
    if (p.type === MsgType.PUBACK && this.sentAt !== 0n) {
      const lat = process.hrtime.bigint() - this.sentAt;
      this.sentAt = 0n;
      this.onPuback?.(lat, p.returnCode);
      return;
    }
    if (this.waiting?.type === p.type) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve(p);
    }
  }

  send(p: Packet): void {
    this.socket.send(encode(p), this.port, '127.0.0.1');
  }

  request<T extends Packet['type']>(p: Packet, answer: T, ms = 10_000): Promise<Extract<Packet, { type: T }>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.clientId}: no answer 0x${answer.toString(16)} within ${ms} ms`)), ms);
      this.waiting = { type: answer, resolve: (x) => (clearTimeout(t), resolve(x as Extract<Packet, { type: T }>)) };
      this.send(p);
    });
  }

  async connect(keepalive = 600): Promise<void> {
    const ack = await this.request({ type: MsgType.CONNECT, will: false, cleanSession: true, protocolId: 1, duration: keepalive, clientId: this.clientId }, MsgType.CONNACK);
    if (ack.returnCode !== 0) throw new Error(`${this.clientId}: CONNACK ${ack.returnCode}`);
  }

  async register(topic: string): Promise<void> {
    const ack = await this.request({ type: MsgType.REGISTER, topicId: 0, msgId: this.msgId++, topicName: topic }, MsgType.REGACK);
    if (ack.returnCode !== 0) throw new Error(`${this.clientId}: REGACK ${ack.returnCode}`);
    this.topicId = ack.topicId;
    this.topicIdType = 0;
  }

  usePredefined(id: number): void {
    this.topicId = id;
    this.topicIdType = 1;
  }

  publish(payload: Buffer, qos: SnQoS): void {
    const msgId = qos > 0 ? (this.msgId = this.msgId === 0xffff ? 1 : this.msgId + 1) : 0;
    if (qos > 0) this.sentAt = process.hrtime.bigint();
    this.send({ type: MsgType.PUBLISH, dup: false, qos, retain: false, topicIdType: this.topicIdType, topicId: this.topicId, msgId, payload });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
