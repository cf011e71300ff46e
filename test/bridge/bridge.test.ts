/**
 * The bridge and its forwarder against a scripted upstream and the in-memory outbox:
 * ordering, the inflight window, resends after a reconnect, refusals, the rate budget,
 * loops and inbound remapping. The real TLS client is covered in upstream-client.test.ts
 * and end to end in test/e2e/bridge.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Bridge, type BridgeSettings } from '../../src/bridge/bridge.js';
import type { Upstream, UpstreamEvents, UpstreamPublish, UpstreamSession } from '../../src/bridge/upstream.js';
import { MemoryOutbox } from '../../src/store/memory-outbox.js';
import { startBroker, type Harness } from '../helpers/broker-harness.js';
import type { Message, QoS } from '../../src/core/message.js';
import { systemClock } from '../../src/core/clock.js';
import { AccessControl } from '../../src/auth/access-control.js';
import { Acl } from '../../src/auth/acl.js';
import { MemoryRemoteFilters } from '../../src/store/remote-filters.js';

const log = pino({ level: 'silent' });

class ScriptedUpstream implements Upstream {
  connected = false;
  writableNow = true;
  sent: UpstreamPublish[] = [];
  direct: { topic: string; payload: string }[] = [];
  subscriptions: { topic: string; qos: QoS; noLocal?: boolean; retainAsPublished?: boolean }[] = [];
  constructor(readonly events: UpstreamEvents) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.connected = false;
  }
  publish(p: UpstreamPublish): boolean {
    if (!this.connected || !this.writableNow) return false;
    this.sent.push(p);
    return true;
  }
  async subscribe(filters: { topic: string; qos: QoS; noLocal?: boolean; retainAsPublished?: boolean }[]): Promise<number[]> {
    this.subscriptions.push(...filters);
    return filters.map((f) => f.qos);
  }
  unsubscribed: string[][] = [];
  /** UNSUBACK codes to answer with (default: all 0). */
  unsubackCodes: number[] | undefined;
  async unsubscribe(filters: string[]): Promise<number[]> {
    this.unsubscribed.push(filters);
    return this.unsubackCodes ?? filters.map(() => 0);
  }
  publishDirect(topic: string, payload: Buffer): void {
    this.direct.push({ topic, payload: String(payload) });
  }
  up(s: Partial<UpstreamSession> = {}): void {
    this.connected = true;
    this.events.up({ sessionPresent: false, receiveMaximum: 65535, maximumPacketSize: undefined, topicAliasMaximum: 0, ...s });
  }
  down(): void {
    this.connected = false;
    this.events.down('test');
  }
  ackAll(code = 0): void {
    for (const p of this.sent.splice(0)) if (p.qos > 0) this.events.acked(p.packetId, code);
  }
}

let h: Harness | undefined;
let outbox: MemoryOutbox | undefined;
let bridge: Bridge | undefined;
afterEach(async () => {
  await bridge?.stop();
  await outbox?.close();
  await h?.close();
  bridge = undefined;
});

async function setup(over: Partial<BridgeSettings> = {}, logger = log) {
  h = startBroker();
  outbox = new MemoryOutbox({ clock: systemClock, log, commitWindowMs: 0 });
  let upstream!: ScriptedUpstream;
  const settings: BridgeSettings = {
    name: 'cloud',
    stateTopic: 'outpost/site/state',
    inflight: 3,
    identity: 'properties',
    rules: [
      { pattern: 'sensors/#', direction: 'out', qos: 1, local_prefix: '', remote_prefix: 'site/' },
      { pattern: 'cmd/#', direction: 'in', qos: 1, local_prefix: 'cloud/', remote_prefix: 'site/' },
      { pattern: 'echo/#', direction: 'both', qos: 1, local_prefix: '', remote_prefix: '' },
    ],
    limits: { maxBytes: 1 << 30, maxRows: 1_000_000, maxAgeMs: 86_400_000, whenFull: 'drop-oldest' },
    upstream: { url: 'mqtt://127.0.0.1:1', clientId: 'site', protocolVersion: 5, keepalive: 60, cleanStart: false, sessionExpiry: 60, connectTimeoutMs: 1000, backoff: { baseMs: 10, capMs: 100 } },
    ...over,
  };
  const filters = new MemoryRemoteFilters();
  bridge = new Bridge(settings, { bus: h.broker, authorizer: h.broker, outbox, remoteFilters: filters, log: logger, clock: systemClock, createUpstream: (_o, ev) => (upstream = new ScriptedUpstream(ev)) });
  await bridge.start(new AbortController().signal);
  return { upstream, outbox, filters, broker: h.broker };
}

function msg(topic: string, n: number): Message {
  return { topic, payload: Buffer.from(String(n)), qos: 1, retain: false, origin: { kind: 'mqtt', id: 'p1' } };
}

const settle = () => new Promise((r) => setTimeout(r, 15));

describe('bridge forwarding', () => {
  it('stores messages while the cloud is down and sends them in order once it is up, within the window', async () => {
    const { upstream, broker } = await setup();
    for (let i = 1; i <= 7; i++) await broker.publish(msg('sensors/t', i));
    await settle();
    expect(upstream.sent).toHaveLength(0);
    upstream.up();
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1', '2', '3']); // window of 3
    const seen: string[] = [];
    for (let round = 0; round < 5 && seen.length < 7; round++) {
      seen.push(...upstream.sent.map((p) => String(p.payload)));
      upstream.ackAll();
      await settle();
    }
    expect(seen).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    expect(outbox!.stats('cloud').rows).toBe(0);
  });

  it('maps the topic, uses the rule QoS and carries id, source and sequence properties', async () => {
    const { upstream, broker } = await setup();
    upstream.up();
    await broker.publish(msg('sensors/boiler/temp', 1));
    await settle();
    const p = upstream.sent[0]!;
    expect(p.topic).toBe('site/sensors/boiler/temp');
    expect(p.qos).toBe(1);
    expect(p.properties?.userProperties).toMatchObject({ 'outpost-src': 'mqtt:p1', 'outpost-seq': '1' });
    expect(p.properties?.userProperties?.['outpost-id']).toMatch(/^memory-\d+$/);
  });

  it('resends what was in flight after a reconnect, first, in order, with DUP and the same packet ids', async () => {
    const { upstream, broker } = await setup();
    upstream.up();
    for (let i = 1; i <= 5; i++) await broker.publish(msg('sensors/t', i));
    await settle();
    const first = upstream.sent.splice(0);
    expect(first.map((p) => String(p.payload))).toEqual(['1', '2', '3']);
    upstream.events.acked(first[0]!.packetId, 0);
    await settle();
    const afterAck = upstream.sent.splice(0);
    expect(afterAck.map((p) => String(p.payload))).toEqual(['4']);
    upstream.down();
    upstream.up();
    const resent = upstream.sent.splice(0);
    expect(resent.map((p) => [String(p.payload), p.dup, p.packetId])).toEqual([
      ['2', true, first[1]!.packetId],
      ['3', true, first[2]!.packetId],
      ['4', true, afterAck[0]!.packetId],
    ]);
  });

  it('keeps a row the cloud refused for now and sends it again before later rows', async () => {
    const { upstream, broker } = await setup({ inflight: 1 });
    upstream.up();
    await broker.publish(msg('sensors/t', 1));
    await broker.publish(msg('sensors/t', 2));
    await settle();
    upstream.ackAll(0x97); // quota exceeded: transient
    await new Promise((r) => setTimeout(r, 1100));
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1']);
    upstream.ackAll();
    await settle();
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['2']);
  });

  it('drops a row the cloud refuses for good (not authorized) and counts it', async () => {
    const { upstream, broker } = await setup({ inflight: 1 });
    upstream.up();
    await broker.publish(msg('sensors/t', 1));
    await broker.publish(msg('sensors/t', 2));
    await settle();
    upstream.ackAll(0x87);
    await settle();
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['2']);
    expect(outbox!.stats('cloud').rows).toBe(1);
  });

  it('counts the rows the cloud refused for good among the drops by reason, and logs the refusals rate-limited', async () => {
    const lines: Array<{ msg: string; suppressed?: number }> = [];
    const capture = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const { upstream, broker } = await setup({ inflight: 10 }, capture);
    upstream.up();
    for (let i = 1; i <= 30; i++) await broker.publish(msg('sensors/t', i));
    for (let round = 0; round < 5; round++) {
      upstream.ackAll(0x87);
      await settle();
    }
    expect(outbox!.stats('cloud').rows).toBe(0);
    expect(bridge!.backlog().drops).toEqual({ 'cloud-refused': 30 });
    expect(lines.filter((l) => l.msg.startsWith('cloud refused a message')).length).toBe(5);
  });

  it('counts a row refused as packet too large (0x95) among the too-large drops, not as an ACL refusal', async () => {
    const { upstream, broker } = await setup({ inflight: 10 });
    upstream.up();
    for (let i = 1; i <= 3; i++) await broker.publish(msg('sensors/t', i));
    upstream.ackAll(0x95);
    await settle();
    expect(outbox!.stats('cloud').rows).toBe(0);
    expect(bridge!.backlog().drops).toEqual({ 'too-large': 3 });
  });

  it('live-first: sends a live row the cloud refused for now again even when the backlog it overtook is drained meanwhile', async () => {
    const { upstream, broker } = await setup({ inflight: 2, order: 'live-first' });
    for (let i = 1; i <= 3; i++) await broker.publish(msg('sensors/t', i));
    await settle();
    upstream.up(); // backlog 1, 2, 3; the window takes 1 and 2
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1', '2']);
    const ack = (payload: string, code = 0) => {
      const i = upstream.sent.findIndex((p) => String(p.payload) === payload);
      const [p] = upstream.sent.splice(i, 1);
      upstream.events.acked(p!.packetId, code);
    };
    await broker.publish(msg('sensors/t', 4)); // live
    await settle();
    ack('1');
    await settle(); // 4 (live) goes first
    ack('2');
    await settle(); // then 3, the last of the backlog
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['4', '3']);
    ack('3');
    await settle(); // the backlog is done
    ack('4', 0x97); // quota exceeded: send it again after a pause
    await new Promise((r) => setTimeout(r, 1100));
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['4']);
    ack('4');
    await settle();
    expect(outbox!.stats('cloud').rows).toBe(0);
  });

  it('live-first: sends a row the cloud refused for now after a reconnect once again, and nothing else twice', async () => {
    const { upstream, broker } = await setup({ inflight: 4, order: 'live-first' });
    upstream.up();
    await broker.publish(msg('sensors/t', 1));
    await settle();
    upstream.down();
    await broker.publish(msg('sensors/t', 2));
    await settle();
    upstream.sent.length = 0;
    upstream.up(); // 1 again (in flight), then the backlog 2
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1', '2']);
    const [first, second] = upstream.sent.splice(0);
    upstream.events.acked(second!.packetId, 0);
    upstream.events.acked(first!.packetId, 0x97);
    await new Promise((r) => setTimeout(r, 1100));
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1']);
    upstream.ackAll();
    await settle();
    expect(upstream.sent).toEqual([]);
    expect(outbox!.stats('cloud').rows).toBe(0);
  });

  it('waits for the socket to drain when the upstream is congested, then continues in order', async () => {
    const { upstream, broker } = await setup({ inflight: 10 });
    upstream.up();
    upstream.writableNow = false;
    for (let i = 1; i <= 3; i++) await broker.publish(msg('sensors/t', i));
    await settle();
    expect(upstream.sent).toHaveLength(0);
    upstream.writableNow = true;
    upstream.events.writable();
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1', '2', '3']);
  });

  it('holds the drain to the configured message rate', async () => {
    const { upstream, broker } = await setup({ inflight: 100, rate: { msgsPerSec: 20 } });
    for (let i = 1; i <= 60; i++) await broker.publish(msg('sensors/t', i));
    await settle();
    const t0 = performance.now();
    upstream.up();
    await new Promise((r) => setTimeout(r, 500));
    const elapsed = (performance.now() - t0) / 1000; // more than 0.5 s on a loaded machine
    // A burst of up to one second's budget, then 20/s.
    expect(upstream.sent.length).toBeGreaterThanOrEqual(20);
    expect(upstream.sent.length).toBeLessThanOrEqual(20 + Math.ceil(20 * elapsed) + 1);
    expect(upstream.sent.length).toBeLessThan(60);
  });

  it('lowers the window to the cloud\'s Receive Maximum', async () => {
    const { upstream, broker } = await setup({ inflight: 100 });
    for (let i = 1; i <= 10; i++) await broker.publish(msg('sensors/t', i));
    await settle();
    upstream.up({ receiveMaximum: 2 });
    expect(upstream.sent).toHaveLength(2);
  });
});

describe('drain order', () => {
  async function drain(upstream: ScriptedUpstream, expected: number): Promise<string[]> {
    const seen: string[] = [];
    for (let round = 0; round < 20 && seen.length < expected; round++) {
      seen.push(...upstream.sent.map((p) => String(p.payload)));
      upstream.ackAll();
      await settle();
    }
    return seen;
  }

  it('live-first sends messages arriving after a reconnect before the backlog, and still delivers all', async () => {
    const { upstream, broker } = await setup({ inflight: 2, order: 'live-first' });
    for (let i = 1; i <= 4; i++) await broker.publish(msg('sensors/t', i)); // backlog while down
    upstream.up();
    expect(upstream.sent.map((p) => String(p.payload))).toEqual(['1', '2']); // the window was free: backlog starts
    await broker.publish(msg('sensors/t', 5)); // live
    await broker.publish(msg('sensors/t', 6));
    const seen = await drain(upstream, 6);
    expect(seen.slice(0, 2)).toEqual(['1', '2']);
    expect(seen.slice(2, 4)).toEqual(['5', '6']); // live overtakes the rest of the backlog
    expect(seen.slice(4)).toEqual(['3', '4']);
    expect(outbox!.stats('cloud').rows).toBe(0);
  });

  it('live-first splits off a new backlog at every reconnect and loses nothing across them', async () => {
    const { upstream, broker } = await setup({ inflight: 1, order: 'live-first' });
    for (let i = 1; i <= 3; i++) await broker.publish(msg('sensors/t', i));
    upstream.up();
    upstream.down();
    for (let i = 4; i <= 5; i++) await broker.publish(msg('sensors/t', i));
    upstream.up();
    const seen = await drain(upstream, 6);
    expect(new Set(seen)).toEqual(new Set(['1', '2', '3', '4', '5']));
    expect(outbox!.stats('cloud').rows).toBe(0);
  });

  it('strict order keeps the backlog ahead of messages that arrive after a reconnect', async () => {
    const { upstream, broker } = await setup({ inflight: 2 });
    for (let i = 1; i <= 4; i++) await broker.publish(msg('sensors/t', i));
    upstream.up();
    await broker.publish(msg('sensors/t', 5));
    expect(await drain(upstream, 5)).toEqual(['1', '2', '3', '4', '5']);
  });
});

describe('bridge inbound, loops and state', () => {
  it('publishes cloud messages locally under the local prefix and subscribes with No Local', async () => {
    const { upstream, broker } = await setup();
    const got: Message[] = [];
    broker.subscribe('cloud/#', { kind: 'system', id: 't' }, { qos: 1 }, (m) => got.push(m));
    upstream.up();
    await settle();
    expect(upstream.subscriptions).toEqual([
      { topic: 'site/cmd/#', qos: 1, noLocal: true, retainAsPublished: true },
      { topic: 'echo/#', qos: 1, noLocal: true, retainAsPublished: true },
    ]);
    upstream.events.message({ topic: 'site/cmd/reboot', payload: Buffer.from('now'), qos: 1, retain: false });
    expect(got.map((m) => [m.topic, String(m.payload), m.origin.kind])).toEqual([['cloud/cmd/reboot', 'now', 'bridge']]);
  });

  it('unsubscribes a resumed remote session from filters no inbound rule uses any more, and remembers what is left', async () => {
    const { upstream, filters } = await setup();
    // An earlier config subscribed site/old/# and site/cmd/#; this one keeps only site/cmd/#.
    filters.save('cloud', ['site/old/#', 'site/cmd/#']);
    upstream.up({ sessionPresent: true });
    await settle();
    expect(upstream.unsubscribed).toEqual([['site/old/#']]);
    expect(upstream.subscriptions.map((f) => f.topic)).toEqual(['site/cmd/#', 'echo/#']);
    expect(filters.get('cloud')).toEqual(['site/cmd/#', 'echo/#']);
  });

  it('sends no UNSUBSCRIBE to a new remote session, which holds no subscriptions, and saves the ones it makes', async () => {
    const { upstream, filters } = await setup();
    filters.save('cloud', ['site/old/#']);
    upstream.up({ sessionPresent: false });
    await settle();
    expect(upstream.unsubscribed).toEqual([]);
    expect(filters.get('cloud')).toEqual(['site/cmd/#', 'echo/#']);
  });

  it('forgets the saved filters when a bridge with no inbound rules gets a new remote session', async () => {
    const { upstream, filters } = await setup({ rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, local_prefix: '', remote_prefix: 'site/' }] });
    filters.save('cloud', ['site/old/#']);
    upstream.up({ sessionPresent: false });
    await settle();
    expect(filters.get('cloud')).toEqual([]);
    upstream.down();
    upstream.up({ sessionPresent: true });
    await settle();
    expect(upstream.unsubscribed).toEqual([]);
    expect(upstream.subscriptions).toEqual([]);
  });

  it('keeps a filter whose UNSUBSCRIBE the cloud refused, and asks again on the next connect', async () => {
    const { upstream, filters } = await setup();
    filters.save('cloud', ['site/old/#', 'site/gone/#']);
    upstream.unsubackCodes = [0x87, 0x11]; // not authorized; no subscription existed
    upstream.up({ sessionPresent: true });
    await settle();
    expect(filters.get('cloud')).toEqual(['site/cmd/#', 'echo/#', 'site/old/#']);
    upstream.down();
    upstream.unsubackCodes = undefined;
    upstream.up({ sessionPresent: true });
    await settle();
    expect(upstream.unsubscribed).toEqual([['site/old/#', 'site/gone/#'], ['site/old/#']]);
    expect(filters.get('cloud')).toEqual(['site/cmd/#', 'echo/#']);
  });

  it('drops and counts an inbound message that no inbound rule takes', async () => {
    const { upstream, broker } = await setup();
    const got: string[] = [];
    broker.subscribe('#', { kind: 'system', id: 't' }, { qos: 1 }, (m) => void got.push(m.topic));
    upstream.up();
    await settle();
    upstream.events.message({ topic: 'site/old/x', payload: Buffer.from('late'), qos: 1, retain: false });
    upstream.events.message({ topic: 'site/cmd/x', payload: Buffer.from('ok'), qos: 1, retain: false });
    expect(got.filter((t) => !t.startsWith('$SYS/'))).toEqual(['cloud/cmd/x']);
    expect(bridge!.counters).toMatchObject({ inbound: 1, unmatched: 1 });
  });

  it('publishes locally only what the ACL lets the bridge write, counting the rest', async () => {
    const { upstream, broker } = await setup();
    broker.setAccessControl(new AccessControl({ acl: Acl.parse('bridge cloud\nwrite cloud/cmd/reboot\n', 'acl') }));
    const got: string[] = [];
    broker.subscribe('#', { kind: 'system', id: 't' }, { qos: 1 }, (m) => void got.push(m.topic));
    upstream.up();
    upstream.events.message({ topic: 'site/cmd/reboot', payload: Buffer.from('1'), qos: 1, retain: false });
    upstream.events.message({ topic: 'site/cmd/wipe', payload: Buffer.from('2'), qos: 1, retain: true });
    expect(got.filter((t) => !t.startsWith('$'))).toEqual(['cloud/cmd/reboot']);
    expect(broker.retainedFor('cloud/#')).toEqual([]);
    expect(bridge!.counters).toMatchObject({ inbound: 2, denied: 1 });
  });

  it('never sends back out what it brought in on a both-way rule', async () => {
    const { upstream } = await setup();
    upstream.up();
    upstream.events.message({ topic: 'echo/x', payload: Buffer.from('in'), qos: 1, retain: false });
    await settle();
    expect(upstream.sent).toHaveLength(0);
    expect(outbox!.stats('cloud').rows).toBe(0);
  });

  it('keeps a retained local state topic and announces online on the cloud', async () => {
    const { upstream, broker } = await setup();
    const state = () => broker.retainedFor('$SYS/outpost/bridge/cloud/state').map((m) => String(m.payload));
    expect(state()).toEqual(['down']);
    upstream.up();
    expect(state()).toEqual(['up']);
    expect(upstream.direct).toEqual([{ topic: 'outpost/site/state', payload: 'online' }]);
    upstream.down();
    expect(state()).toEqual(['down']);
  });
});
