/** Shared pieces of the outbox contract suite and the store tests. */
import type { Message, Origin } from '../../src/core/message.js';
import type { Outbox } from '../../src/store/outbox.js';
import type { FakeClock } from '../helpers/fake-clock.js';

export interface OutboxHarness {
  outbox: Outbox & { readonly commits: number };
  close(): Promise<void>;
}

export interface OutboxFactoryOptions {
  clock: FakeClock;
  commitWindowMs?: number;
  sweepIntervalMs?: number;
}

export type OutboxFactory = (opts: OutboxFactoryOptions) => OutboxHarness | Promise<OutboxHarness>;

export const boiler: Origin = { kind: 'serial', id: 'boiler' };
export const door: Origin = { kind: 'mqtt', id: 'door-sensor' };

export function msg(topic: string, payload: string, extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, origin: boiler, ...extra };
}

/** Payloads of the committed rows of `bridge`, oldest first. */
export function payloads(outbox: Outbox, bridge: string): string[] {
  return outbox.read(bridge, 0, 1000).map((e) => e.payload.toString());
}

