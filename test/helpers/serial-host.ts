/**
 * A SerialHost on in-memory ports, a real Broker as the bus and a FakeClock: what the driver
 * host tests drive. Messages on every topic (including $SYS) are recorded in order.
 */
import pino from 'pino';
import { Broker } from '../../src/broker/broker.js';
import { parseConfigText } from '../../src/config/load.js';
import type { SerialConfig } from '../../src/config/serial-schema.js';
import type { Message } from '../../src/core/message.js';
import type { DriverDefinition } from '../../src/serial/driver-api.js';
import { SerialHost } from '../../src/serial/host.js';
import { driverRegistry } from '../../drivers/index.js';
import { FakeClock } from './fake-clock.js';
import { AccessControl } from '../../src/auth/access-control.js';
import { Acl } from '../../src/auth/acl.js';
import { MemoryPorts, settle } from './memory-ports.js';

export interface HostRig {
  host: SerialHost;
  broker: Broker;
  ports: MemoryPorts;
  clock: FakeClock;
  messages: Message[];
  /** Log lines at warn and above, parsed. */
  logs: { level: number; msg: string; [k: string]: unknown }[];
  /** Payloads published on a topic, as text. */
  on(topic: string): string[];
  /** Advance fake time, letting I/O callbacks run around it. */
  advance(ms: number): Promise<void>;
  stop(): Promise<void>;
}

/** `serialYaml` is the body of the serial: section (indented by the caller or not). */
export function serialConfig(serialYaml: string): SerialConfig {
  const text = `serial:\n${serialYaml.split('\n').map((l) => `  ${l}`).join('\n')}\n`;
  return parseConfigText(text, 'test.yaml').serial;
}

export async function startHost(config: SerialConfig, opts: { drivers?: DriverDefinition[]; random?: () => number; acl?: string } = {}): Promise<HostRig> {
  const extraDrivers = opts.drivers ?? [];
  const clock = new FakeClock();
  const logs: HostRig['logs'] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const access = opts.acl === undefined ? undefined : new AccessControl({ acl: Acl.parse(opts.acl, 'acl') });
  const broker = new Broker({}, { log: pino({ level: 'silent' }), clock, ...(access ? { access } : {}) });
  const messages: Message[] = [];
  broker.subscribe('#', { kind: 'system', id: 'test' }, { qos: 1, retainAsPublished: true }, (m) => void messages.push(m));
  broker.subscribe('$SYS/#', { kind: 'system', id: 'test-sys' }, { qos: 1, retainAsPublished: true }, (m) => void messages.push(m));
  const ports = new MemoryPorts();
  const drivers = new Map([...driverRegistry(), ...extraDrivers.map((d) => [d.name, d] as const)]);
  // Pinned jitter: by default every reopen delay is exactly the base (random = 0).
  const host = new SerialHost(config, { bus: broker, authorizer: broker, log, opener: ports, drivers, clock, random: opts.random ?? (() => 0) });
  await host.start();
  await settle();
  return {
    host,
    broker,
    ports,
    clock,
    messages,
    logs,
    on: (topic) => messages.filter((m) => m.topic === topic).map((m) => m.payload.toString()),
    async advance(ms) {
      await settle();
      clock.advance(ms);
      await settle();
    },
    async stop() {
      await host.stop();
      await broker.close();
    },
  };
}
