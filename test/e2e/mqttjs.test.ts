/**
 * Interoperability with MQTT.js 5 (3.1.1 and 5.0) over real TCP on 127.0.0.1, against
 * the Gateway as production wires it.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, within, type RunningGateway } from '../helpers/gateway-fixture.js';

let gw: RunningGateway;
const clients: MqttClient[] = [];

beforeEach(async () => {
  gw = await startGateway();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await within(gw.stop(), 5000, 'the gateway to stop');
});

async function client(version: 4 | 5, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(gw.url, { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 2000, ...opts });
  clients.push(c);
  return c;
}

interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Resolves with the next `n` messages the client receives. */
function messages(c: MqttClient, n: number, ms = 3000): Promise<Received[]> {
  const got: Received[] = [];
  return within(
    new Promise<Received[]>((resolve) => {
      const on = (topic: string, payload: Buffer, packet: IPublishPacket) => {
        got.push({ topic, payload: payload.toString(), packet });
        if (got.length === n) {
          c.off('message', on);
          resolve(got);
        }
      };
      c.on('message', on);
    }),
    ms,
    `${n} message(s), got ${got.length}`,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([4, 5] as const)('MQTT.js with protocol version %i', (version) => {
  it('delivers QoS 0, 1 and 2 publishes with their QoS', async () => {
    const sub = await client(version, { clientId: `sub-${version}` });
    await sub.subscribeAsync('e2e/#', { qos: 2 });
    const pub = await client(version, { clientId: `pub-${version}` });
    const arriving = messages(sub, 3);
    await pub.publishAsync('e2e/q0', 'zero', { qos: 0 });
    await pub.publishAsync('e2e/q1', 'one', { qos: 1 });
    await pub.publishAsync('e2e/q2', 'two', { qos: 2 });
    const got = await arriving;
    expect(got.map((m) => [m.topic, m.payload, m.packet.qos]).sort()).toEqual([
      ['e2e/q0', 'zero', 0],
      ['e2e/q1', 'one', 1],
      ['e2e/q2', 'two', 2],
    ]);
  });

  it('keeps a retained message for later subscribers and clears it with an empty retained publish', async () => {
    const pub = await client(version);
    await pub.publishAsync('e2e/state', 'on', { qos: 1, retain: true });
    const late = await client(version);
    const arriving = messages(late, 1);
    await late.subscribeAsync('e2e/state', { qos: 1 });
    const [m] = await arriving;
    expect([m!.payload, m!.packet.retain]).toEqual(['on', true]);

    await pub.publishAsync('e2e/state', '', { qos: 1, retain: true });
    const later = await client(version);
    let count = 0;
    later.on('message', () => count++);
    await later.subscribeAsync('e2e/state', { qos: 1 });
    await sleep(100);
    expect(count).toBe(0);
  });

  it('publishes the Will when the client connection is destroyed', async () => {
    const watcher = await client(version);
    await watcher.subscribeAsync('e2e/wills/#', { qos: 1 });
    const dying = await client(version, { clientId: `dying-${version}`, will: { topic: 'e2e/wills/dying', payload: Buffer.from('lost'), qos: 1, retain: false } });
    const arriving = messages(watcher, 1);
    dying.stream.destroy();
    const [m] = await arriving;
    expect([m!.topic, m!.payload]).toEqual(['e2e/wills/dying', 'lost']);
  });

  it('keeps a persistent session: QoS 1 messages published while the client was away arrive when it returns', async () => {
    const sessionOpts: IClientOptions =
      version === 5 ? { clientId: 'persist-5', clean: false, properties: { sessionExpiryInterval: 300 } } : { clientId: 'persist-4', clean: false };
    const first = await client(version, sessionOpts);
    await first.subscribeAsync('e2e/inbox', { qos: 1 });
    await first.endAsync();
    const pub = await client(version);
    for (const n of ['a', 'b', 'c']) await pub.publishAsync('e2e/inbox', n, { qos: 1 });
    // Register the handler before CONNACK is processed: the queued messages follow it at once.
    const back = mqtt.connect(gw.url, { protocolVersion: version, reconnectPeriod: 0, ...sessionOpts });
    clients.push(back);
    const arriving = messages(back, 3);
    const connack = await within(new Promise<{ sessionPresent: boolean }>((r) => back.once('connect', r)), 2000, 'CONNACK');
    expect(connack.sessionPresent).toBe(true);
    expect((await arriving).map((m) => [m.payload, m.packet.qos])).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
  });
});

describe('MQTT.js with large messages', () => {
  it('carries a 512 KiB payload intact over TCP', async () => {
    const sub = await client(5);
    await sub.subscribeAsync('e2e/big', { qos: 1 });
    const pub = await client(4);
    const payload = Buffer.alloc(512 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const arriving = new Promise<Buffer>((resolve) => sub.once('message', (_t, p) => resolve(p)));
    await pub.publishAsync('e2e/big', payload, { qos: 1 });
    expect((await within(arriving, 3000, 'the big message')).equals(payload)).toBe(true);
  });

  it('disconnects an MQTT 5 publisher with 0x95 when its packet exceeds max_packet_size, and keeps serving others', async () => {
    const limit = gw.gateway.broker.options.maxPacketSize;
    const pub = await client(5);
    const told = within(new Promise<number | undefined>((r) => pub.once('disconnect', (p) => r(p.reasonCode))), 3000, 'DISCONNECT');
    pub.publish('e2e/too-big', Buffer.alloc(limit + 1), { qos: 0 });
    expect(await told).toBe(0x95);
    const other = await client(5);
    await other.subscribeAsync('e2e/after', { qos: 0 });
    const arriving = messages(other, 1);
    await other.publishAsync('e2e/after', 'still here', { qos: 0 });
    expect((await arriving)[0]!.payload).toBe('still here');
  });
});

describe('MQTT.js with MQTT 5 properties', () => {
  it('round-trips user properties, content type and payload format', async () => {
    const sub = await client(5);
    await sub.subscribeAsync('e2e/props', { qos: 1 });
    const pub = await client(5);
    const arriving = messages(sub, 1);
    await pub.publishAsync('e2e/props', '{"v":1}', {
      qos: 1,
      properties: { userProperties: { site: '17', tags: ['a', 'b'] }, contentType: 'application/json', payloadFormatIndicator: true },
    });
    const [m] = await arriving;
    expect(m!.packet.properties?.userProperties).toEqual({ site: '17', tags: ['a', 'b'] });
    expect(m!.packet.properties?.contentType).toBe('application/json');
    expect(m!.packet.properties?.payloadFormatIndicator).toBe(true);
  });

  it('carries a request/response exchange with Response Topic and Correlation Data', async () => {
    const responder = await client(5, { clientId: 'responder' });
    await responder.subscribeAsync('e2e/rpc/time', { qos: 1 });
    const answered: Promise<unknown>[] = [];
    responder.on('message', (_topic, payload, packet) => {
      const replyTo = packet.properties?.responseTopic;
      if (replyTo === undefined) return;
      answered.push(
        responder.publishAsync(replyTo, `pong:${payload.toString()}`, {
          qos: 1,
          properties: { correlationData: packet.properties?.correlationData },
        }),
      );
    });
    const requester = await client(5, { clientId: 'requester' });
    await requester.subscribeAsync('e2e/rpc/replies/requester', { qos: 1 });
    const arriving = messages(requester, 2);
    for (const id of ['req-1', 'req-2']) {
      await requester.publishAsync('e2e/rpc/time', id, {
        qos: 1,
        properties: { responseTopic: 'e2e/rpc/replies/requester', correlationData: Buffer.from(id) },
      });
    }
    const replies = await arriving;
    const byCorrelation = Object.fromEntries(replies.map((m) => [String(m.packet.properties?.correlationData), m.payload]));
    expect(byCorrelation).toEqual({ 'req-1': 'pong:req-1', 'req-2': 'pong:req-2' });
    await Promise.all(answered); // the responder's publishes were acknowledged too
  });
});

describe('MQTT.js with MQTT 5 topic aliases', () => {
  it('lets MQTT.js publish with automatically assigned topic aliases', async () => {
    const sub = await client(5);
    await sub.subscribeAsync('e2e/alias/#', { qos: 1 });
    const pub = await client(5, { autoAssignTopicAlias: true });
    const arriving = messages(sub, 4);
    for (const n of ['1', '2', '3', '4']) await pub.publishAsync('e2e/alias/long/topic/name', n, { qos: 1 });
    expect((await arriving).map((m) => [m.topic, m.payload])).toEqual([
      ['e2e/alias/long/topic/name', '1'],
      ['e2e/alias/long/topic/name', '2'],
      ['e2e/alias/long/topic/name', '3'],
      ['e2e/alias/long/topic/name', '4'],
    ]);
  });

  it('sends topic aliases that MQTT.js resolves when it announced a Topic Alias Maximum', async () => {
    const sub = await client(5, { properties: { topicAliasMaximum: 2 } });
    await sub.subscribeAsync('e2e/ta/#', { qos: 1 });
    const pub = await client(5);
    const topics = ['e2e/ta/a', 'e2e/ta/b', 'e2e/ta/c', 'e2e/ta/a', 'e2e/ta/b', 'e2e/ta/c'];
    const arriving = messages(sub, topics.length);
    for (const [i, t] of topics.entries()) await pub.publishAsync(t, String(i), { qos: 1 });
    const got = await arriving;
    expect(got.map((m) => [m.topic, m.payload])).toEqual(topics.map((t, i) => [t, String(i)]));
    // The broker did use aliases on the wire (MQTT.js reports the alias it resolved).
    expect(got.some((m) => m.packet.properties?.topicAlias !== undefined)).toBe(true);
  });
});

describe('gateway shutdown with MQTT.js clients connected', () => {
  it('stops promptly, telling MQTT 5 clients 0x8B (server shutting down)', async () => {
    const v5 = await client(5);
    const v4 = await client(4);
    const told = within(new Promise<number | undefined>((r) => v5.once('disconnect', (p) => r(p.reasonCode))), 3000, 'DISCONNECT');
    const closed4 = within(new Promise<void>((r) => v4.once('close', () => r())), 3000, 'the 3.1.1 client to be closed');
    const started = Date.now();
    await within(gw.stop(), 3000, 'the gateway to stop');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await told).toBe(0x8b);
    await closed4;
  });
});
