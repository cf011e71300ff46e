/**
 * A real Gateway with bridges (store + bridges + broker + one listener on port 0), built
 * from a config object through the production YAML parser and schema, with its JSON log
 * lines captured in memory so tests can read what an operator would read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { parseConfigText } from '../../src/config/load.js';
import type { Clock } from '../../src/core/clock.js';
import type { MonotonicNow } from '../../src/core/clock-steps.js';
import { Gateway } from '../../src/gateway.js';
import { createRootLogger } from '../../src/observability/logger.js';

export interface LogLine {
  level: string;
  msg: string;
  time: string;
  [k: string]: unknown;
}

export interface BridgedGateway {
  gateway: Gateway;
  url: string;
  port: number;
  dir: string;
  /** Every log line so far, parsed. */
  logs(): LogLine[];
  /** Stops the gateway (idempotent); keeps the state directory. */
  stop(): Promise<void>;
  /** Stops and removes the state directory. */
  dispose(): Promise<void>;
}

export interface BridgedGatewayOptions {
  /** `bridges:` entries as written in YAML (snake_case keys). */
  bridges: Record<string, unknown>[];
  store?: Record<string, unknown>;
  /** Reuse a state directory (restart scenarios). */
  dir?: string;
  level?: 'debug' | 'info' | 'warn';
  /** The gateway's wall clock and the monotonic clock its steps are seen against (GatewayDeps). */
  clock?: Clock;
  monotonic?: MonotonicNow;
}

export async function startBridgedGateway(options: BridgedGatewayOptions): Promise<BridgedGateway> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'outpost-bridge-e2e-'));
  const config = parseConfigText(
    JSON.stringify({
      listeners: [{ type: 'mqtt', host: '127.0.0.1', port: 0 }],
      store: { dir: join(dir, 'data'), ...options.store },
      bridges: options.bridges,
    }),
    'bridge-e2e.yaml',
  );
  const lines: string[] = [];
  const log = createRootLogger({ level: options.level ?? 'debug', format: 'json', destination: { write: (line: string) => void lines.push(line) } });
  const gateway = new Gateway(config, { log, clock: options.clock, monotonic: options.monotonic });
  await gateway.start(new AbortController().signal);
  const { host, port } = gateway.addresses[0]!;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= gateway.stop());
  return {
    gateway,
    url: `mqtt://${host}:${port}`,
    port,
    dir,
    logs: () => lines.map((l) => JSON.parse(l) as LogLine),
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An MQTT.js client on the gateway (or any broker), connected. */
export async function localClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, clientId: `local-${Math.random().toString(16).slice(2, 10)}`, ...options });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/**
 * Publishes every payload at QoS 1 in order, at most `window` unacknowledged at a time;
 * resolves once every PUBACK arrived (rejects on the first failure).
 */
export async function publishAll(client: MqttClient, topic: string, payloads: Buffer[], window = 50): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < payloads.length) {
      const p = payloads[next++]!;
      await client.publishAsync(topic, p, { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, payloads.length) }, worker));
}

/** Polls `cond` every 20 ms; rejects after `ms` naming `what`. */
export async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
