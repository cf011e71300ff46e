/**
 * Our own MQTT-SN v1.2 test client: real UDP datagrams on 127.0.0.1 or ::1, with
 * injected loss and duplication (seeded, so a failure replays), optional forwarder
 * encapsulation (§5.5), and helpers for the common exchanges. It encodes with the
 * gateway's codec; the codec's own table tests pin the octets independently.
 */
import dgram from 'node:dgram';
import { decode } from '../../src/mqttsn/decode.js';
import { encapsulate, encode } from '../../src/mqttsn/encode.js';
import { MsgType, type Packet, type SnQoS } from '../../src/mqttsn/packets.js';
import { prng } from './prng.js';

export interface SnClientOptions {
  port: number;
  host?: string;
  /** Probability that an outgoing / incoming datagram is lost. */
  lossOut?: number;
  lossIn?: number;
  /** Probability that an outgoing datagram is sent twice. */
  dupOut?: number;
  seed?: number;
  /** Send through a forwarder: every datagram is encapsulated with this Wireless Node Id. */
  nodeId?: Buffer;
  /** With nodeId: the Ctrl octet the forwarder sets on what it sends (§5.5), default 0. */
  ctrl?: number;
  /** Answer REGISTER with REGACK and PUBLISH QoS 1/2 with PUBACK/PUBREC/PUBCOMP automatically. */
  autoAck?: boolean;
}

type Of<T extends Packet['type']> = Extract<Packet, { type: T }>;

export class SnTestClient {
  readonly received: Packet[] = [];
  /** Every incoming PUBLISH in arrival order (kept even after next() consumed it). */
  readonly publishes: Of<0x0c>[] = [];
  /** Topic ids the gateway registered with us. */
  readonly topicIds = new Map<number, string>();
  /** MsgType of every message that arrived (after loss injection), in order. */
  readonly arrivals: number[] = [];
  dropIncoming: ((p: Packet) => boolean) | undefined;
  private socket!: dgram.Socket;
  private waiters: { match: (p: Packet) => boolean; resolve: (p: Packet) => void }[] = [];
  private readonly rand: () => number;
  private msgId = 1;
  lastCtrl: number | undefined;

  constructor(private readonly opts: SnClientOptions) {
    this.rand = prng(opts.seed ?? 42);
  }

  static async open(opts: SnClientOptions): Promise<SnTestClient> {
    const c = new SnTestClient(opts);
    await c.bind();
    return c;
  }

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  private bind(): Promise<void> {
    this.socket = dgram.createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
    this.socket.on('message', (buf) => this.onMessage(buf));
    return new Promise((resolve) => this.socket.bind(0, this.host, () => resolve()));
  }

  private onMessage(buf: Buffer): void {
    if (this.opts.lossIn && this.rand() < this.opts.lossIn) return;
    const d = decode(buf);
    if (!d.ok) throw new Error(`gateway sent an undecodable datagram ${buf.toString('hex')}: ${d.reason}`);
    if ((this.opts.nodeId !== undefined) !== (d.encapsulation !== undefined)) throw new Error('encapsulation mismatch');
    this.lastCtrl = d.encapsulation?.ctrl;
    const p = d.packet;
    if (this.dropIncoming?.(p)) return;
    this.arrivals.push(p.type);
    if (p.type === MsgType.PUBLISH) this.publishes.push(p);
    if (p.type === MsgType.REGISTER) this.topicIds.set(p.topicId, p.topicName);
    if (this.opts.autoAck) this.ack(p);
    const w = this.waiters.find((x) => x.match(p));
    if (w !== undefined) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(p);
    } else {
      this.received.push(p);
    }
  }

  private ack(p: Packet): void {
    if (p.type === MsgType.REGISTER) this.send({ type: MsgType.REGACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    if (p.type === MsgType.PUBLISH && p.qos === 1) this.send({ type: MsgType.PUBACK, topicId: p.topicId, msgId: p.msgId, returnCode: 0 });
    if (p.type === MsgType.PUBLISH && p.qos === 2) this.send({ type: MsgType.PUBREC, msgId: p.msgId });
    if (p.type === MsgType.PUBREL) this.send({ type: MsgType.PUBCOMP, msgId: p.msgId });
  }

  send(p: Packet): void {
    this.sendRaw(encode(p));
  }

  sendRaw(buf: Buffer): void {
    if (this.opts.lossOut && this.rand() < this.opts.lossOut) return;
    const out = this.opts.nodeId === undefined ? buf : encapsulate(buf, { ctrl: this.opts.ctrl ?? 0, wirelessNodeId: this.opts.nodeId });
    this.socket.send(out, this.opts.port, this.host);
    if (this.opts.dupOut && this.rand() < this.opts.dupOut) this.socket.send(out, this.opts.port, this.host);
  }

  /** The next message of this type (already received or still to come). */
  next<T extends Packet['type']>(type: T, ms = 2000, match: (p: Of<T>) => boolean = () => true): Promise<Of<T>> {
    const m = (p: Packet): boolean => p.type === type && match(p as Of<T>);
    const i = this.received.findIndex(m);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0] as Of<T>);
    return new Promise((resolve, reject) => {
      const w = { match: m, resolve: (p: Packet) => (clearTimeout(t), resolve(p as Of<T>)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message of type 0x${type.toString(16)} within ${ms} ms; got ${JSON.stringify(this.received.map((x) => x.type))}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Resolves true if no message of the type arrives within ms. */
  async none(type: Packet['type'], ms = 300): Promise<boolean> {
    try {
      await this.next(type, ms);
      return false;
    } catch {
      return true;
    }
  }

  nextMsgId(): number {
    return this.msgId++;
  }

  async connect(clientId: string, o: { clean?: boolean; duration?: number; will?: { topic: string; payload: string; qos?: SnQoS; retain?: boolean } | 'empty'; protocolId?: number } = {}): Promise<number> {
    this.send({ type: MsgType.CONNECT, will: o.will !== undefined, cleanSession: o.clean ?? true, protocolId: o.protocolId ?? 1, duration: o.duration ?? 60, clientId });
    if (o.will !== undefined) {
      await this.next(MsgType.WILLTOPICREQ);
      if (o.will === 'empty') {
        this.send({ type: MsgType.WILLTOPIC, qos: 0, retain: false, topic: undefined });
      } else {
        this.send({ type: MsgType.WILLTOPIC, qos: o.will.qos ?? 0, retain: o.will.retain ?? false, topic: o.will.topic });
        await this.next(MsgType.WILLMSGREQ);
        this.send({ type: MsgType.WILLMSG, payload: Buffer.from(o.will.payload) });
      }
    }
    return (await this.next(MsgType.CONNACK)).returnCode;
  }

  async register(topicName: string): Promise<Of<0x0b>> {
    const msgId = this.nextMsgId();
    this.send({ type: MsgType.REGISTER, topicId: 0, msgId, topicName });
    return this.next(MsgType.REGACK, 2000, (p) => p.msgId === msgId);
  }

  async subscribe(topic: string | { predefined: number } | { short: string }, qos: SnQoS = 1): Promise<Of<0x13>> {
    const msgId = this.nextMsgId();
    const t = typeof topic === 'string' ? { topicIdType: 0 as const, topicName: topic, topicId: undefined }
      : 'predefined' in topic ? { topicIdType: 1 as const, topicName: undefined, topicId: topic.predefined }
      : { topicIdType: 2 as const, topicName: undefined, topicId: Buffer.from(topic.short, 'latin1').readUInt16BE(0) };
    this.send({ type: MsgType.SUBSCRIBE, dup: false, qos, msgId, ...t });
    return this.next(MsgType.SUBACK, 2000, (p) => p.msgId === msgId);
  }

  publish(topicId: number, payload: string | Buffer, o: { qos?: SnQoS; topicIdType?: 0 | 1 | 2; retain?: boolean; msgId?: number; dup?: boolean } = {}): number {
    const qos = o.qos ?? 0;
    const msgId = o.msgId ?? (qos > 0 ? this.nextMsgId() : 0);
    this.send({ type: MsgType.PUBLISH, dup: o.dup ?? false, qos, retain: o.retain ?? false, topicIdType: o.topicIdType ?? 0, topicId, msgId, payload: Buffer.from(payload) });
    return msgId;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
