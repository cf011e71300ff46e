/**
 * What reached the cloud, seen by an MQTT.js subscriber with a persistent session on the
 * cloud Mosquitto's plain listener. It survives the broker's restarts (Mosquitto must run
 * with `persistence: true`): messages that arrive while it is reconnecting are queued in
 * its session and delivered afterwards, so nothing the bridge delivered is missed.
 *
 * Each message keeps the identity user properties (outpost-id/src/seq) and the DUP flag of
 * Mosquitto's PUBLISH to us: DUP set means Mosquitto redelivered it to this observer (its own
 * retry after a restart), DUP clear with an outpost-id seen before means the bridge sent it
 * to the cloud twice. `analyse()` checks per-source order with that distinction.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { OBSERVER, type Mosquitto } from './mosquitto.js';

export interface CloudMessage {
  topic: string;
  payload: Buffer;
  dup: boolean;
  id: string | undefined;
  src: string | undefined;
  seq: number | undefined;
  props: Record<string, string>;
}

export interface Analysis {
  /** Messages received (duplicates included). */
  received: number;
  /** Distinct outpost-id values. */
  distinct: number;
  /** Repeats of an outpost-id that Mosquitto got twice from the bridge (DUP clear here). */
  bridgeDuplicates: number;
  /** Repeats that Mosquitto itself redelivered to the observer (DUP set). */
  cloudRedeliveries: number;
  /** A first arrival whose outpost-seq was not (highest so far + 1) for its source: reorder or gap. */
  orderViolations: string[];
  /** Highest outpost-seq per source. */
  maxSeq: Map<string, number>;
}

function flat(props: Record<string, string | string[]> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props ?? {})) out[k] = Array.isArray(v) ? v[v.length - 1]! : v;
  return out;
}

export class CloudObserver {
  readonly messages: CloudMessage[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const props = flat(packet.properties?.userProperties as Record<string, string | string[]> | undefined);
      const seq = props['outpost-seq'];
      this.messages.push({ topic, payload, dup: packet.dup, id: props['outpost-id'], src: props['outpost-src'], seq: seq === undefined ? undefined : Number(seq), props });
    });
  }

  /** Connects with a persistent session (reconnecting every 100 ms while the broker is down). */
  static async connect(broker: Mosquitto, filters: string[]): Promise<CloudObserver> {
    const client = mqtt.connect(broker.plainUrl, {
      ...OBSERVER,
      clientId: `cloud-observer-${Math.random().toString(16).slice(2, 10)}`,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 100,
      connectTimeout: 2000,
    });
    client.on('error', () => undefined); // reconnects are expected while the cloud is down
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.subscribeAsync(filters, { qos: 1 });
    return new CloudObserver(client);
  }

  async until(done: (messages: CloudMessage[]) => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done(this.messages)) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; ${this.messages.length} messages arrived`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Messages that carry an outpost identity (the state topic's online/offline do not). */
  identified(): CloudMessage[] {
    return this.messages.filter((m) => m.id !== undefined);
  }

  /** Distinct outpost-ids received so far. */
  distinctIds(): number {
    return new Set(this.identified().map((m) => m.id)).size;
  }

  /** Order and duplicates over the messages that carry an outpost identity. */
  analyse(): Analysis {
    const seen = new Set<string>();
    const maxSeq = new Map<string, number>();
    const messages = this.identified();
    const a: Analysis = { received: messages.length, distinct: 0, bridgeDuplicates: 0, cloudRedeliveries: 0, orderViolations: [], maxSeq };
    for (const m of messages) {
      const key = m.id!;
      if (seen.has(key)) {
        if (m.dup) a.cloudRedeliveries++;
        else a.bridgeDuplicates++;
        continue;
      }
      seen.add(key);
      const src = m.src ?? '?';
      const prev = maxSeq.get(src) ?? 0;
      if (m.seq !== prev + 1 && a.orderViolations.length < 10) a.orderViolations.push(`${src}: seq ${m.seq} after ${prev}`);
      maxSeq.set(src, Math.max(prev, m.seq ?? 0));
    }
    a.distinct = seen.size;
    return a;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
