/**
 * Small packet-level building blocks shared by the broker feature tests: connect a
 * RawClient, subscribe, publish, wait for a condition.
 */
import type { IPublishPacket, ISubscription, Packet } from 'mqtt-packet';
import type { Harness } from './broker-harness.js';
import type { RawClient } from './raw-client.js';

type Connect = Extract<Packet, { cmd: 'connect' }>;
type Connack = Extract<Packet, { cmd: 'connack' }>;

/** A connected client and its CONNACK. Fails the test when the broker refuses. */
export async function connect(
  h: Harness,
  clientId: string,
  opts: Partial<Connect> = {},
  version: 3 | 4 | 5 = 5,
): Promise<{ c: RawClient; connack: Connack }> {
  const c = h.client(version);
  const connack = await c.connect({ clientId, ...opts });
  const code = version === 5 ? connack.reasonCode : connack.returnCode;
  if (code !== 0) throw new Error(`CONNACK for ${clientId} refused with ${code}`);
  return { c, connack };
}

let nextId = 1;

/** SUBSCRIBE and wait for the SUBACK; returns the granted codes. */
export async function subscribe(
  c: RawClient,
  subscriptions: ISubscription[] | string,
  qos: 0 | 1 | 2 = 1,
  properties?: Extract<Packet, { cmd: 'subscribe' }>['properties'],
): Promise<number[]> {
  const subs = typeof subscriptions === 'string' ? [{ topic: subscriptions, qos }] : subscriptions;
  const messageId = nextId++;
  c.send({ cmd: 'subscribe', messageId, subscriptions: subs, ...(properties ? { properties } : {}) });
  const ack = await c.next('suback');
  if (ack.messageId !== messageId) throw new Error(`SUBACK for ${ack.messageId}, expected ${messageId}`);
  return ack.granted as number[];
}

/** A PUBLISH packet with sensible defaults. */
export function publishPacket(
  topic: string,
  payload: string | Buffer,
  qos: 0 | 1 | 2 = 0,
  extra: Partial<IPublishPacket> = {},
): IPublishPacket {
  return {
    cmd: 'publish',
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos,
    dup: false,
    retain: false,
    ...(qos > 0 ? { messageId: nextId++ } : {}),
    ...extra,
  };
}

/** Publishes and, for QoS 1, waits for the PUBACK; for QoS 2 completes the whole flow. */
export async function publish(
  c: RawClient,
  topic: string,
  payload: string | Buffer,
  qos: 0 | 1 | 2 = 0,
  extra: Partial<IPublishPacket> = {},
): Promise<void> {
  const p = publishPacket(topic, payload, qos, extra);
  c.send(p);
  if (qos === 1) {
    const ack = await c.next('puback');
    if (ack.messageId !== p.messageId) throw new Error(`PUBACK for ${ack.messageId}, expected ${p.messageId}`);
  } else if (qos === 2) {
    const rec = await c.next('pubrec');
    c.send({ cmd: 'pubrel', messageId: rec.messageId });
    await c.next('pubcomp');
  }
}

/** Polls until `cond` holds (real time), or fails naming `what`. */
export async function until(cond: () => boolean, what = 'condition', timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets queued nextTick/stream callbacks run (the broker batches writes per tick). */
export function ticks(ms = 5): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every PUBLISH received so far (removed from the client's buffer). */
export function takePublishes(c: RawClient): IPublishPacket[] {
  const out: IPublishPacket[] = [];
  for (let i = 0; i < c.received.length; ) {
    const p = c.received[i]!;
    if (p.cmd === 'publish') {
      out.push(p);
      c.received.splice(i, 1);
    } else i++;
  }
  return out;
}

/** Waits for `n` PUBLISHes, acknowledging QoS 1 ones when `ack` is set. */
export async function collect(c: RawClient, n: number, opts: { ack?: boolean; timeoutMs?: number } = {}): Promise<IPublishPacket[]> {
  const out: IPublishPacket[] = [];
  while (out.length < n) {
    const p = await c.next('publish', opts.timeoutMs ?? 2000);
    out.push(p);
    if (opts.ack && p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId });
  }
  return out;
}
