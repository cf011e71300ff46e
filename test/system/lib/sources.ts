/**
 * Stamped sources for the whole-gateway scenario. Each source numbers its messages 1, 2, 3, …
 * on its own topic and remembers which numbers outpost acknowledged:
 *
 *   MqttSource     MQTT.js (3.1.1 or 5), QoS 1, one publish at a time; acked = PUBACK received
 *   SnSource       MQTT-SN over real UDP, QoS 1; acked = PUBACK with return code 0. Every attach
 *                  opens a new socket, so the sensor comes back from a new source port
 *   LineJsonSource a socat pty printing {"seq":n} lines (a line-json device); never acked
 *   NmeaSource     a socat pty printing GGA sentences whose altitude is n (an nmea device)
 *
 * A source runs from attach() until detach() or until its connection dies (after a kill -9);
 * the scenario attaches it again when the gateway is back. Numbers are never reused, so an
 * acknowledged number missing at the cloud is a lost message, a repeated one a duplicate.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { MsgType } from '../../../src/mqttsn/packets.js';
import { SnTestClient } from '../../helpers/mqttsn-client.js';
import type { SocatPty } from '../../helpers/pty.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface StampedSource {
  readonly name: string;
  /** Local topic the source publishes on. */
  readonly topic: string;
  /** Highest number handed out so far. */
  readonly sent: number;
  /** Numbers outpost acknowledged (empty for serial sources, which get no acknowledgement). */
  readonly acked: ReadonlySet<number>;
  detach(): Promise<void>;
}

type Outcome = 'acked' | 'refused' | 'failed';

/**
 * Publishes at `ratePerSec` until `gen` changes; `once` sends one number and says what became
 * of it: acked, refused by outpost with a negative acknowledgement (counted, the loop goes on),
 * or failed (no answer: the loop stops until the source is attached again).
 */
abstract class Paced {
  sent = 0;
  readonly acked = new Set<number>();
  /** Numbers outpost answered with a refusal (MQTT 5 PUBACK 0x97, MQTT-SN PUBACK 0x01). */
  refused = 0;
  protected gen = 0;

  constructor(protected readonly ratePerSec: number, protected readonly pad = 0) {}

  /** The payload of number n: its digits, padded with spaces to `pad` bytes (still a number to parse). */
  protected payload(n: number): string {
    return String(n).padEnd(this.pad, ' ');
  }

  protected run(gen: number, once: (n: number) => Promise<Outcome>, onFail: () => void): void {
    const interval = 1000 / this.ratePerSec;
    void (async () => {
      // Spread the sources' phases so they do not all publish on the same tick.
      await sleep(Math.random() * interval);
      while (gen === this.gen) {
        const t0 = Date.now();
        const n = ++this.sent;
        let outcome: Outcome;
        try {
          outcome = await once(n);
        } catch {
          outcome = 'failed';
        }
        if (gen !== this.gen) return;
        if (outcome === 'acked') this.acked.add(n);
        else if (outcome === 'refused') this.refused++;
        else {
          onFail();
          return;
        }
        await sleep(Math.max(0, interval - (Date.now() - t0)));
      }
    })();
  }
}

export class MqttSource extends Paced implements StampedSource {
  private client: MqttClient | undefined;
  readonly topic: string;

  constructor(
    readonly name: string,
    private readonly version: 4 | 5,
    ratePerSec: number,
    pad = 0,
    /** A persistent session (3.1.1 clean session 0, MQTT 5 session expiry 1 h). */
    private readonly persistent = false,
  ) {
    super(ratePerSec, pad);
    this.topic = `site/mqtt/${name}`;
  }

  /** False once the connection is gone (outpost died, or closed a 3.1.1 client it could not store for). */
  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connects to the local broker and publishes until detached or cut off. */
  async attach(url: string): Promise<void> {
    await this.detach();
    const client = mqtt.connect(url, {
      clientId: this.name,
      protocolVersion: this.version,
      reconnectPeriod: 0,
      connectTimeout: 3000,
      clean: !this.persistent,
      ...(this.persistent && this.version === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
    });
    client.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('close', () => reject(new Error(`${this.name}: connection closed before CONNACK`)));
    });
    this.client = client;
    const gen = ++this.gen;
    // A PUBACK that never comes (the gateway died) must not hold the loop: close ends it.
    client.once('close', () => {
      if (gen === this.gen) this.gen++;
    });
    this.run(gen, async (n) => {
      try {
        await client.publishAsync(this.topic, this.payload(n), { qos: 1 });
        return 'acked';
      } catch (err) {
        // MQTT.js rejects a PUBACK with a reason code ≥ 0x80 with an error carrying the code.
        return (err as { code?: number }).code === 0x97 ? 'refused' : 'failed';
      }
    }, () => undefined);
  }

  async detach(): Promise<void> {
    this.gen++;
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync(true).catch(() => undefined);
  }
}

export class SnSource extends Paced implements StampedSource {
  private client: SnTestClient | undefined;
  readonly topic: string;
  /** UDP source ports this sensor used, one per attach. */
  readonly ports: number[] = [];
  /** Set when the loop stopped because the gateway did not answer; the scenario re-attaches. */
  broken = false;

  constructor(
    readonly name: string,
    ratePerSec: number,
    pad = 0,
    /**
     * A sleeping sensor (§6.14): between readings it sleeps (DISCONNECT with a duration) and
     * for each reading wakes with CONNECT (CleanSession 0, its topic id kept), publishes and
     * goes back to sleep.
     */
    readonly sleepy = false,
  ) {
    super(ratePerSec, pad);
    this.topic = `site/sn/${name}`;
  }

  async attach(port: number): Promise<void> {
    // The new socket is bound before the old one closes, so the OS cannot hand back the port
    // just given up (it does, about once in 20,000 binds): every attach is a port change.
    const client = await SnTestClient.open({ port, autoAck: true });
    await this.detach();
    this.client = client;
    this.ports.push(client.localPort);
    const rc = await client.connect(this.name, { duration: 30, clean: !this.sleepy });
    if (rc !== 0) throw new Error(`${this.name}: CONNACK return code ${rc}`);
    const reg = await client.register(this.topic);
    if (reg.returnCode !== 0) throw new Error(`${this.name}: REGACK return code ${reg.returnCode}`);
    this.broken = false;
    const gen = ++this.gen;
    let asleep = false;
    this.run(gen, async (n) => {
      if (asleep) {
        const woke = await client.connect(this.name, { duration: 30, clean: false });
        if (woke !== 0) return 'failed';
        asleep = false;
      }
      const msgId = client.publish(reg.topicId, this.payload(n), { qos: 1 });
      const ack = await client.next(MsgType.PUBACK, 5000, (p) => p.msgId === msgId);
      if (this.sleepy) {
        client.send({ type: MsgType.DISCONNECT, duration: 60 });
        await client.next(MsgType.DISCONNECT, 5000);
        asleep = true;
      }
      // 0x01 (congestion) is a refusal to count; 0x02 (unknown topic id: the gateway restarted
      // and forgot this sensor) means register again, as a sensor would.
      return ack.returnCode === 0 ? 'acked' : ack.returnCode === 1 ? 'refused' : 'failed';
    }, () => {
      if (gen === this.gen) this.broken = true;
    });
  }

  async detach(): Promise<void> {
    this.gen++;
    const c = this.client;
    this.client = undefined;
    if (c) await c.close().catch(() => undefined);
  }
}

/** A serial device simulated on a socat pty; `line(n)` is what it prints for reading n. */
export class PtySource implements StampedSource {
  sent = 0;
  /** A serial device gets no acknowledgement. */
  readonly acked: ReadonlySet<number> = new Set<number>();
  private gen = 0;

  constructor(
    readonly name: string,
    readonly topic: string,
    private readonly pty: SocatPty,
    private readonly line: (n: number) => string,
    private readonly ratePerSec: number,
  ) {}

  get path(): string {
    return this.pty.path;
  }

  start(): void {
    const gen = ++this.gen;
    const interval = 1000 / this.ratePerSec;
    void (async () => {
      while (gen === this.gen) {
        await this.pty.write(this.line(++this.sent)).catch(() => undefined);
        await sleep(interval);
      }
    })();
  }

  /** The cable is pulled for `ms`: socat goes away; readings printed meanwhile are lost by nature. */
  async unplugFor(ms: number): Promise<void> {
    this.gen++;
    await this.pty.unplug();
    await sleep(ms);
    await this.pty.plug();
    this.start();
  }

  async detach(): Promise<void> {
    this.gen++;
  }
}

export const lineJson = (n: number): string => `{"seq":${n}}\n`;

/** A GGA sentence (14 fields, valid checksum) whose altitude field is n. */
export function ggaLine(n: number): string {
  const body = `GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,${n}.0,M,46.9,M,,`;
  let x = 0;
  for (const ch of body) x ^= ch.charCodeAt(0);
  return `$${body}*${x.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}
