/**
 * Bad input, one row per offence: what is sent, and what the broker must do about it:
 * close the connection (with a DISCONNECT reason code for v5 once connected, or a
 * CONNACK return code for a refused CONNECT), count it, and keep serving everyone else.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { remainingLength } from '../helpers/wire.js';
import type { Packet } from 'mqtt-packet';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import type { RawClient } from '../helpers/raw-client.js';
import type { BrokerOptions } from '../../src/broker/options.js';

type Publish = Extract<Packet, { cmd: 'publish' }>;

// ---- raw packet building ----------------------------------------------------------


function frame(first: number, body: number[]): number[] {
  return [first, ...remainingLength(body.length), ...body];
}

function str(s: string | number[]): number[] {
  const b = typeof s === 'string' ? [...Buffer.from(s, 'utf8')] : s;
  return [b.length >> 8, b.length & 0xff, ...b];
}

const bytes = (s: string) => [...Buffer.from(s, 'utf8')];

interface RawConnect {
  name?: string;
  level?: number;
  flags?: number;
  clientId?: string;
  tail?: number[];
}

function connectRaw({ name = 'MQTT', level = 4, flags = 0x02, clientId = 'bad', tail = [] }: RawConnect = {}): number[] {
  return frame(0x10, [...str(name), level, flags, 0, 0, ...(level === 5 ? [0] : []), ...str(clientId), ...tail]);
}

/** PUBLISH with a raw topic; v5 gets an empty (or the given) property block. */
function publishRaw(version: 4 | 5, topic: number[], opts: { first?: number; id?: number; props?: number[] } = {}): number[] {
  const first = opts.first ?? 0x30;
  const qos = (first >> 1) & 3;
  const id = qos > 0 ? [(opts.id ?? 1) >> 8, (opts.id ?? 1) & 0xff] : [];
  const props = version === 5 ? [...remainingLength((opts.props ?? []).length), ...(opts.props ?? [])] : [];
  return frame(first, [...str(topic), ...id, ...props, ...bytes('payload')]);
}

const pub = (topic: string, extra: Partial<Publish> = {}): Publish =>
  ({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false, ...extra }) as Publish;

// ---- the table ----------------------------------------------------------------------

interface Row {
  name: string;
  version: 4 | 5;
  /** Send a valid CONNECT first (default true). */
  connect?: boolean;
  options?: Partial<BrokerOptions>;
  setup?: (h: Harness) => void;
  send: (c: RawClient) => void;
  /** The violation counted (by outcome), unless the CONNECT is refused with `connack`. */
  violation?: string;
  /** v5 only, connected clients: the reason code of the DISCONNECT the broker sends. */
  disconnect?: number;
  /** CONNACK return/reason code of a refused CONNECT. */
  connack?: number;
}

const raw = (b: number[]) => (c: RawClient) => c.sendRaw(b);
const packets = (...ps: Packet[]) => (c: RawClient) => ps.forEach((p) => c.send(p));

/** A durable sink that never commits, so acknowledgements stay pending. */
const stuckSink = (h: Harness) => {
  h.broker.addDurableSink({ name: 'stuck', selects: () => true, accept: () => new Promise<void>(() => {}) });
};

const both = (row: Omit<Row, 'version' | 'disconnect'>, v5Reason: number): Row[] => [
  { ...row, version: 4 },
  { ...row, name: `${row.name} (v5)`, version: 5, disconnect: v5Reason },
];

const rows: Row[] = [
  // Framing
  ...both({ name: 'malformed remaining length (five bytes of 0xFF) [MQTT-1.5.5-1]', send: raw([0x30, 0xff, 0xff, 0xff, 0xff, 0xff]), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'garbage first byte: reserved packet type 0 [MQTT-2.2.2-2]', send: raw([0x00, 0x00]), violation: 'malformed-packet' }, 0x81),
  { name: 'an HTTP request instead of CONNECT [MQTT-3.1.0-1]', version: 4, connect: false, send: raw(bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), violation: 'protocol-error' },
  { name: 'a lone byte that is not CONNECT, before CONNECT [MQTT-3.1.0-1]', version: 4, connect: false, send: raw([0x82]), violation: 'protocol-error' },
  ...both({ name: 'packet larger than the maximum packet size [MQTT-3.2.2-? 4.13]', options: { maxPacketSize: 1024 }, send: packets(pub('big', { payload: Buffer.alloc(2000, 1) })), violation: 'packet-too-large' }, 0x95),
  ...both({ name: 'PUBLISH whose topic length runs past the packet', send: raw([0x30, 0x04, 0x00, 0x10, 0x61, 0x62]), violation: 'malformed-packet' }, 0x81),

  // Connection state
  ...[4, 5].map((version): Row => ({ name: `PUBLISH before CONNECT [MQTT-3.1.0-1] (v${version})`, version: version as 4 | 5, connect: false, send: packets(pub('early')), violation: 'protocol-error' })),
  { name: 'PINGREQ before CONNECT [MQTT-3.1.0-1]', version: 4, connect: false, send: raw([0xc0, 0x00]), violation: 'protocol-error' },
  ...both({ name: 'second CONNECT on one connection [MQTT-3.1.0-2]', send: (c) => c.send({ cmd: 'connect', clientId: 'again', protocolVersion: c.version, clean: true, keepalive: 0 } as Packet), violation: 'protocol-error' }, 0x82),

  // CONNECT content
  { name: 'unknown protocol level 6 in CONNECT → CONNACK 1 [MQTT-3.1.2-2]', version: 4, connect: false, send: raw(connectRaw({ level: 6 })), connack: 1 },
  { name: 'unknown protocol level 2 in CONNECT → CONNACK 1 [MQTT-3.1.2-2]', version: 4, connect: false, send: raw(connectRaw({ level: 2 })), connack: 1 },
  { name: 'protocol name "MQIsdp" (3.1) with protocol level 4 → CONNACK 1 [MQTT-3.1.2-1]', version: 4, connect: false, send: raw(connectRaw({ name: 'MQIsdp', level: 4 })), connack: 1 },
  { name: 'protocol name "MQTT" with protocol level 3 → CONNACK 1 [MQTT-3.1.2-1]', version: 4, connect: false, send: raw(connectRaw({ level: 3 })), connack: 1 },
  { name: 'bytes after the last field of a 3.1.1 CONNECT (§2.1.4)', version: 4, connect: false, send: raw(connectRaw({ tail: [0x00, 0x01, 0x02] })), violation: 'malformed-packet' },
  { name: 'bytes after the last field of a v5 CONNECT (§2.1.4)', version: 5, connect: false, send: raw(connectRaw({ level: 5, tail: [0x00] })), violation: 'malformed-packet' },
  { name: 'wrong protocol name in CONNECT [MQTT-3.1.2-1]', version: 4, connect: false, send: raw(connectRaw({ name: 'MQTX' })), violation: 'malformed-packet' },
  { name: 'reserved CONNECT flag set [MQTT-3.1.2-3]', version: 4, connect: false, send: raw(connectRaw({ flags: 0x03 })), violation: 'malformed-packet' },
  { name: 'will QoS 3 [MQTT-3.1.2-14]', version: 4, connect: false, send: raw(connectRaw({ flags: 0x1e, tail: [...str('w'), ...str('p')] })), violation: 'malformed-packet' },
  { name: 'will retain without the will flag [MQTT-3.1.2-15]', version: 4, connect: false, send: raw(connectRaw({ flags: 0x22 })), violation: 'malformed-packet' },
  { name: 'will topic with a wildcard [MQTT-3.1.3-10]', version: 4, connect: false, send: raw(connectRaw({ flags: 0x06, tail: [...str('w/#'), ...str('p')] })), connack: 3 },
  { name: 'password without a user name in 3.1.1: closed without CONNACK [MQTT-3.1.2-22, MQTT-3.1.4-1]', version: 4, connect: false, send: raw(connectRaw({ flags: 0x42, tail: str('secret') })), violation: 'malformed-packet' },

  // PUBLISH content
  ...both({ name: 'ill-formed UTF-8 in the PUBLISH topic (0xC3 0x28) [MQTT-1.5.3-1]', send: (c) => c.sendRaw(publishRaw(c.version as 4 | 5, [0x61, 0xc3, 0x28])), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'U+0000 in the PUBLISH topic [MQTT-1.5.3-2]', send: packets(pub('a\u0000b')), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'wildcard in the PUBLISH topic [MQTT-3.3.2-2]', send: (c) => c.sendRaw(publishRaw(c.version as 4 | 5, bytes('a/+/c'))), violation: 'topic-name-invalid' }, 0x90),
  { name: 'empty PUBLISH topic [MQTT-4.7.3-1]', version: 4, send: (c) => c.sendRaw(publishRaw(4, [])), violation: 'topic-name-invalid' },
  ...both({ name: 'PUBLISH with QoS 3 [MQTT-3.3.1-4]', send: (c) => c.sendRaw(publishRaw(c.version as 4 | 5, bytes('t'), { first: 0x36 })), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'QoS 0 PUBLISH with the DUP flag set [MQTT-3.3.1-2]', send: (c) => c.sendRaw(publishRaw(c.version as 4 | 5, bytes('t'), { first: 0x38 })), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'QoS 1 PUBLISH with packet id 0 [MQTT-2.3.1-1]', send: (c) => c.sendRaw(publishRaw(c.version as 4 | 5, bytes('t'), { first: 0x32, id: 0 })), violation: 'protocol-error' }, 0x82),
  ...both({
    name: 'QoS 2 packet id reused with DUP=0 before PUBREL [MQTT-2.3.1-2]',
    send: packets(pub('t', { qos: 2, messageId: 5 }), pub('t', { qos: 2, messageId: 5 })),
    violation: 'protocol-error',
  }, 0x82),
  {
    name: 'Receive Maximum exceeded [MQTT-3.3.4-9]',
    version: 5,
    options: { receiveMaximum: 2 },
    setup: stuckSink,
    send: packets(pub('rm', { qos: 1, messageId: 1 }), pub('rm', { qos: 1, messageId: 2 }), pub('rm', { qos: 1, messageId: 3 })),
    violation: 'receive-maximum-exceeded',
    disconnect: 0x93,
  },
  { name: 'topic alias 0 [MQTT-3.3.2-8]', version: 5, send: (c) => c.sendRaw(publishRaw(5, bytes('t'), { props: [0x23, 0x00, 0x00] })), violation: 'topic-alias-invalid', disconnect: 0x94 },
  {
    name: 'topic alias above the Topic Alias Maximum [MQTT-3.3.2-9]',
    version: 5,
    options: { topicAliasMaximum: 4 },
    send: (c) => c.sendRaw(publishRaw(5, bytes('t'), { props: [0x23, 0x00, 0x05] })),
    violation: 'topic-alias-invalid',
    disconnect: 0x94,
  },
  {
    // mqtt-packet reads the value as null; forwarding it used to throw inside the router, and
    // as a retained message it threw again for every later subscriber (here: the healthy one).
    name: 'user property value running past the end of a retained PUBLISH (§2.2.2.2)',
    version: 5,
    send: (c) => c.sendRaw(frame(0x31, [...str('health/x'), 6, 0x26, ...str('k'), 0, 80, ...bytes('payload')])),
    violation: 'malformed-packet',
    disconnect: 0x81,
  },
  { name: 'will property running past the end of CONNECT', version: 5, connect: false, send: raw(frame(0x10, [...str('MQTT'), 5, 0x06, 0, 0, 0, ...str('w5'), 3, 0x03, 0, 80, ...str('w/t'), ...str('p')])), violation: 'malformed-packet' },
  // Properties given twice where MQTT 5 allows one (§2.2.2.2: "a Protocol Error to include … more than once")
  { name: 'Content Type twice in a PUBLISH (§3.3.2.3.9)', version: 5, send: (c) => c.sendRaw(publishRaw(5, bytes('t'), { props: [0x03, ...str('a'), 0x03, ...str('b')] })), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'Message Expiry Interval twice in a PUBLISH, the first 0 (§3.3.2.3.3)', version: 5, send: (c) => c.sendRaw(publishRaw(5, bytes('t'), { props: [0x02, 0, 0, 0, 0, 0x02, 0, 0, 0, 50] })), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'Session Expiry Interval twice in a DISCONNECT (§3.14.2.2.2)', version: 5, send: raw(frame(0xe0, [0x00, 10, 0x11, 0, 0, 0, 60, 0x11, 0, 0, 0, 60])), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'Reason String twice in a PUBACK (§3.4.2.2.2)', version: 5, send: raw(frame(0x40, [0, 1, 0x00, 8, 0x1f, ...str('a'), 0x1f, ...str('b')])), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'Subscription Identifier twice in a SUBSCRIBE (§3.8.2.1.2)', version: 5, send: raw(frame(0x82, [0, 1, 4, 0x0b, 1, 0x0b, 2, ...str('a'), 0])), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'a Subscription Identifier in a PUBLISH from a client [MQTT-3.3.4-6]', version: 5, send: (c) => c.sendRaw(publishRaw(5, bytes('t'), { props: [0x0b, 0x01] })), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'a Response Topic with a wildcard [MQTT-3.3.2-14]', version: 5, send: (c) => c.sendRaw(publishRaw(5, bytes('t'), { props: [0x08, ...str('r/#')] })), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'an empty topic without a topic alias in v5 (§3.3.2.1)', version: 5, send: (c) => c.sendRaw(publishRaw(5, [])), violation: 'protocol-error', disconnect: 0x82 },
  { name: 'topic alias that was never set, with an empty topic', version: 5, send: (c) => c.sendRaw(publishRaw(5, [], { props: [0x23, 0x00, 0x01] })), violation: 'protocol-error', disconnect: 0x82 },

  // SUBSCRIBE / UNSUBSCRIBE / acks
  ...both({ name: 'SUBSCRIBE with reserved flag bits 0000 [MQTT-3.8.1-1]', send: raw(frame(0x80, [0, 1, ...str('a'), 0])), violation: 'malformed-packet' }, 0x81),
  { name: 'SUBSCRIBE requesting QoS 3 [MQTT-3-8.3-4]', version: 4, send: raw(frame(0x82, [0, 1, ...str('a'), 3])), violation: 'malformed-packet' },
  { name: 'SUBSCRIBE with reserved bits set in the requested QoS byte [MQTT-3-8.3-4]', version: 4, send: raw(frame(0x82, [0, 1, ...str('a'), 0x04])), violation: 'malformed-packet' },
  { name: 'SUBSCRIBE without any topic filter [MQTT-3.8.3-3]', version: 4, send: raw(frame(0x82, [0, 1])), violation: 'protocol-error' },
  ...both({ name: 'SUBSCRIBE with packet id 0 [MQTT-2.3.1-1]', send: (c) => c.sendRaw(frame(0x82, [0, 0, ...(c.version === 5 ? [0] : []), ...str('a'), 0])), violation: 'protocol-error' }, 0x82),
  ...both({ name: 'SUBSCRIBE with ill-formed UTF-8 in a filter [MQTT-1.5.3-1]', send: (c) => c.sendRaw(frame(0x82, [0, 1, ...(c.version === 5 ? [0] : []), ...str('ok'), 0, ...str([0x61, 0xc3, 0x28]), 0])), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'SUBSCRIBE with U+0000 in a filter [MQTT-1.5.3-2]', send: (c) => c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a\u0000/#', qos: 0 }] }), violation: 'malformed-packet' }, 0x81),
  ...both({ name: 'UNSUBSCRIBE with ill-formed UTF-8 in a filter [MQTT-1.5.3-1]', send: (c) => c.sendRaw(frame(0xa2, [0, 1, ...(c.version === 5 ? [0] : []), ...str([0xed, 0xa0, 0x80])])), violation: 'malformed-packet' }, 0x81),
  { name: 'UNSUBSCRIBE with reserved flag bits 0000 [MQTT-3.10.1-1]', version: 4, send: raw(frame(0xa0, [0, 1, ...str('a')])), violation: 'malformed-packet' },
  { name: 'UNSUBSCRIBE without any topic filter [MQTT-3.10.3-2]', version: 4, send: raw(frame(0xa2, [0, 1])), violation: 'protocol-error' },
  { name: 'UNSUBSCRIBE with packet id 0 [MQTT-2.3.1-1]', version: 4, send: raw(frame(0xa2, [0, 0, ...str('a')])), violation: 'protocol-error' },
  ...both({ name: 'PUBREL with reserved flag bits 0000 [MQTT-3.6.1-1]', send: raw([0x60, 0x02, 0x00, 0x01]), violation: 'malformed-packet' }, 0x81),
  { name: 'DISCONNECT with reserved flag bits set [MQTT-2.2.2-2]', version: 4, send: raw([0xe1, 0x00]), violation: 'malformed-packet' },
  { name: 'PINGREQ with a payload [MQTT-2.2.2-2]', version: 4, send: raw([0xc0, 0x01, 0x00]), violation: 'malformed-packet' },

  // Packets only a server sends
  ...both({ name: 'CONNACK from a client', send: (c) => c.send({ cmd: 'connack', sessionPresent: false, returnCode: 0, reasonCode: 0 } as Packet), violation: 'protocol-error' }, 0x82),
  ...both({ name: 'SUBACK from a client', send: (c) => c.send({ cmd: 'suback', messageId: 1, granted: [0] } as Packet), violation: 'protocol-error' }, 0x82),
  ...both({ name: 'UNSUBACK from a client', send: raw(frame(0xb0, [0, 1])), violation: 'protocol-error' }, 0x82),
  ...both({ name: 'PINGRESP from a client', send: raw([0xd0, 0x00]), violation: 'protocol-error' }, 0x82),
  { name: 'AUTH without an agreed authentication method [MQTT-4.12.0-1]', version: 5, send: raw([0xf0, 0x02, 0x18, 0x00]), violation: 'protocol-error', disconnect: 0x82 },
];

// ---- the runner ---------------------------------------------------------------------

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function totalViolations(h: Harness): number {
  let n = 0;
  for (const v of h.broker.metrics.violations.values()) n += v;
  return n;
}

describe('bad input', () => {
  it.each(rows.map((r) => [r.name, r] as const))('closes the connection on %s and keeps serving other clients', async (_name, row) => {
    h = startBroker(row.options ?? {});
    row.setup?.(h);

    // A healthy pair that must not notice anything.
    const sub = h.client(4);
    expect((await sub.connect({ clientId: 'healthy-sub' })).returnCode).toBe(0);
    const good = h.client(5);
    expect((await good.connect({ clientId: 'healthy-pub' })).reasonCode).toBe(0);

    const bad = h.client(row.version);
    if (row.connect !== false) {
      const ack = await bad.connect({ clientId: 'offender' });
      expect(row.version === 5 ? ack.reasonCode : ack.returnCode).toBe(0);
    }
    const violationsBefore = totalViolations(h);
    const refusedBefore = h.broker.metrics.connectionsRefused;

    row.send(bad);
    await bad.waitClosed();
    await bad.settle(10);

    const seen = bad.received.map((p) => p.cmd);
    if (row.connack !== undefined) {
      const ack = await bad.next('connack', 100);
      expect(ack.returnCode).toBe(row.connack);
      expect(h.broker.metrics.connectionsRefused).toBe(refusedBefore + 1);
    } else {
      expect(row.violation).toBeDefined();
      expect(h.broker.metrics.violations.get(row.violation!), `violations: ${JSON.stringify(Object.fromEntries(h.broker.metrics.violations))}`).toBe(1);
      expect(totalViolations(h)).toBe(violationsBefore + 1);
    }
    if (row.disconnect !== undefined) {
      const d = await bad.next('disconnect', 100);
      expect(d.reasonCode).toBe(row.disconnect);
    } else {
      // 3.1.1 has no server DISCONNECT, and before CONNACK v5 sends none either [MQTT-4.13.1-1].
      expect(seen).not.toContain('disconnect');
    }
    if (row.connect === false && row.connack === undefined) expect(seen).not.toContain('connack');

    // The rest of the broker is unaffected: subscribe and publish still work.
    sub.send({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'health/+', qos: 1 }] });
    expect((await sub.next('suback')).granted).toEqual([1]);
    good.send({ cmd: 'publish', topic: 'health/check', payload: Buffer.from('ok'), qos: 0, retain: false, dup: false });
    const got = await sub.next('publish');
    expect(String(got.payload)).toBe('ok');
    expect(sub.closed || good.closed).toBe(false);
    expect(h.broker.connectionCount).toBe(2);
  });
});

describe('unusual but well-formed input', () => {
  it('accepts an MQTT 3.1 CONNECT ("MQIsdp", level 3) and a 3.1.1 CONNECT whose Will, user name and password end it exactly', async () => {
    h = startBroker();
    const v31 = h.client(4);
    v31.sendRaw(connectRaw({ name: 'MQIsdp', level: 3, clientId: 'v31' }));
    expect((await v31.next('connack')).returnCode).toBe(0);
    const full = h.client(4);
    // Will (QoS 1), user name and password flags, each field present once.
    full.sendRaw(connectRaw({ flags: 0xce, clientId: 'full', tail: [...str('will/t'), ...str('bye'), ...str('user'), ...str('pw')] }));
    expect((await full.next('connack')).returnCode).toBe(0);
    expect(v31.closed || full.closed).toBe(false);
    expect(totalViolations(h)).toBe(0);
  });

  it('drops a message the encoder refuses for that subscriber only, and the rest still get it', async () => {
    h = startBroker();
    const v5 = h.client(5);
    await v5.connect({ clientId: 'v5-sub' });
    v5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'enc/#', qos: 1 }] });
    await v5.next('suback');
    const v4 = h.client(4);
    await v4.connect({ clientId: 'v4-sub' });
    v4.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'enc/#', qos: 1 }] });
    await v4.next('suback');
    // A bus producer (driver, bridge) with a user property mqtt-packet cannot encode.
    const bad = { userProperties: { k: null as unknown as string } };
    expect(() => h!.broker.publish({ topic: 'enc/x', payload: Buffer.from('p'), qos: 1, retain: false, properties: bad, origin: { kind: 'serial', id: 'tty' } })).not.toThrow();
    expect(String((await v4.next('publish')).payload)).toBe('p'); // 3.1.1 carries no properties
    await v5.settle(30);
    expect(v5.received.filter((p) => p.cmd === 'publish')).toEqual([]);
    expect(h.broker.metrics.drops.get('unencodable')).toBe(1);
    h.broker.publish({ topic: 'enc/y', payload: Buffer.from('fine'), qos: 0, retain: false, origin: { kind: 'serial', id: 'tty' } });
    expect(String((await v5.next('publish')).payload)).toBe('fine');
  });

  it('accepts a PUBLISH topic holding a U+FFFD that was really sent as EF BF BD', async () => {
    h = startBroker();
    const sub = h.client(4);
    await sub.connect({ clientId: 'sub' });
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'odd/#', qos: 0 }] });
    await sub.next('suback');
    const c = h.client(4);
    await c.connect({ clientId: 'odd' });
    c.sendRaw(publishRaw(4, bytes('odd/\ufffd')));
    const got = await sub.next('publish');
    expect(got.topic).toBe('odd/\ufffd');
    expect(c.closed).toBe(false);
    expect(totalViolations(h)).toBe(0);
  });

  it('answers a SUBSCRIBE to a filter holding a real U+FFFD without closing the connection', async () => {
    h = startBroker();
    const c = h.client(4);
    await c.connect({ clientId: 'odd' });
    c.sendRaw(frame(0x82, [0, 9, ...str(bytes('odd/\ufffd')), 0]));
    expect((await c.next('suback')).messageId).toBe(9);
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
    expect(c.closed).toBe(false);
    expect(totalViolations(h)).toBe(0);
  });

  it('keeps the connection when a client sends PUBACK, PUBREC or PUBCOMP for unknown packet ids', async () => {
    h = startBroker();
    const c = h.client(4);
    await c.connect({ clientId: 'acks' });
    c.send({ cmd: 'puback', messageId: 100 });
    c.send({ cmd: 'pubcomp', messageId: 101 });
    c.send({ cmd: 'pubrec', messageId: 102 });
    expect((await c.next('pubrel')).messageId).toBe(102);
    c.send({ cmd: 'pubrel', messageId: 103 });
    expect((await c.next('pubcomp')).messageId).toBe(103);
    expect(c.closed).toBe(false);
    expect(totalViolations(h)).toBe(0);
  });

  it('accepts a packet split into single bytes', async () => {
    h = startBroker();
    const c = h.client(4);
    const connect = connectRaw({ clientId: 'drip' });
    for (const b of connect) c.sendRaw([b]);
    expect((await c.next('connack')).returnCode).toBe(0);
    for (const b of [0xc0, 0x00]) c.sendRaw([b]);
    await c.next('pingresp');
  });

  it('accepts several packets in one write', async () => {
    h = startBroker();
    const c = h.client(4);
    c.sendRaw([...connectRaw({ clientId: 'batch' }), 0xc0, 0x00, 0xc0, 0x00, ...frame(0x82, [0, 1, ...str('b/#'), 1])]);
    expect((await c.next('connack')).returnCode).toBe(0);
    await c.next('pingresp');
    await c.next('pingresp');
    expect((await c.next('suback')).granted).toEqual([1]);
  });
});
