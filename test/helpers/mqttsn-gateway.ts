/**
 * An MQTT-SN gateway on 127.0.0.1 (and ::1 on request) with an OS-assigned UDP port, on
 * an in-process broker, configured through the real YAML schema.
 */
import type { Logger } from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { Broker } from '../../src/broker/broker.js';
import type { Clock } from '../../src/core/clock.js';
import type { Message } from '../../src/core/message.js';
import { createMqttsnGateway } from '../../src/mqttsn/create.js';
import type { MqttsnGateway } from '../../src/mqttsn/gateway.js';
import type { SnQueueStore, SnSessionStore } from '../../src/mqttsn/persistence.js';
import { silentLog } from './broker-harness.js';
import { SnTestClient, type SnClientOptions } from './mqttsn-client.js';

export interface SnHarness {
  broker: Broker;
  gw: MqttsnGateway;
  port: number;
  client(o?: Partial<SnClientOptions>): Promise<SnTestClient>;
  /** Messages seen on the bus for a filter, from now on. */
  watch(filter: string): Message[];
  /** Publishes on the bus as a local (system) publisher would; resolves once the bus accepted it. */
  local(topic: string, payload: string | Buffer, qos?: 0 | 1 | 2, retain?: boolean): Promise<void> | undefined;
  close(): Promise<void>;
}

/** `yaml` is extra YAML under `mqttsn:`, e.g. "max_retries: 1". */
export async function startSnGateway(yaml = '', o: { clock?: Clock; ipv6?: boolean; hosts?: string[]; broker?: Broker; log?: Logger; store?: SnSessionStore; queue?: SnQueueStore } = {}): Promise<SnHarness> {
  const hosts = o.hosts !== undefined ? JSON.stringify(o.hosts) : o.ipv6 ? '["127.0.0.1", "::1"]' : '["127.0.0.1"]';
  const text = ['mqttsn:', `  hosts: ${hosts}`, '  port: 0', ...(yaml.includes('advertise:') ? [] : ['  advertise: { interval: 0 }']), ...yaml.split('\n').filter(Boolean).map((l) => `  ${l}`)].join('\n');
  const config = parseConfigText(text, 'mqttsn-test.yaml').mqttsn!;
  const broker = o.broker ?? new Broker({}, { log: silentLog, clock: o.clock });
  const gw = createMqttsnGateway(config, { bus: broker, authorizer: broker, log: o.log ?? silentLog, clock: o.clock });
  gw.attachStore(o.store, o.queue);
  await gw.start();
  const port = gw.addresses[0]!.port;
  const clients: SnTestClient[] = [];
  return {
    broker,
    gw,
    port,
    async client(co = {}) {
      const c = await SnTestClient.open({ port, ...co });
      clients.push(c);
      return c;
    },
    local(topic, payload, qos = 0, retain = false) {
      return broker.publish({ topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain, origin: { kind: 'system', id: 'test' } });
    },
    watch(filter) {
      const seen: Message[] = [];
      broker.subscribe(filter, { kind: 'system', id: 'test' }, { qos: 2 }, (m) => seen.push(m));
      return seen;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await gw.stop();
      await broker.close();
    },
  };
}

/** Resolves once `cond` holds (real time, polling), or rejects naming `what`. */
export async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
