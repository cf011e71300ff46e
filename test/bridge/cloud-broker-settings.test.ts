/**
 * The bridge against real Mosquitto clouds configured in ways that bite: small limits, ACLs,
 * odd rules. A real Gateway (outbox, bridge, broker) in this process, Mosquitto over TLS as
 * the cloud, an MQTT.js observer on the cloud's plain listener.
 */
import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { testCerts } from '../helpers/certs.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Mosquitto, Observer, type MosquittoOptions } from '../helpers/mosquitto.js';
import { localClient, publishAll, sleep, startBridgedGateway, waitFor, type BridgedGateway } from '../helpers/bridge-gateway.js';

const certs = testCerts();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

async function cloud(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const m = new Mosquitto(options);
  cleanups.push(() => m.dispose());
  await m.start();
  return m;
}

function bridge(m: Mosquitto, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'cloud',
    url: m.tlsUrl,
    ca: certs.ca.crt,
    keepalive: '2s',
    connect_timeout: '2s',
    backoff: { base: '100ms', cap: '500ms' },
    rules: [{ pattern: 'sensors/#', qos: 1, remote_prefix: 'sites/17/' }],
    ...extra,
  };
}

async function gatewayWith(bridges: Record<string, unknown>[]): Promise<BridgedGateway> {
  const gw = await startBridgedGateway({ bridges });
  cleanups.push(() => gw.dispose());
  return gw;
}

async function client(url: string): Promise<MqttClient> {
  const c = await localClient(url);
  cleanups.push(() => c.endAsync(true));
  return c;
}

async function observer(m: Mosquitto, filters: string[]): Promise<Observer> {
  const o = await Observer.connect(m, filters);
  cleanups.push(() => o.close());
  return o;
}

describe('a cloud with a message size limit', () => {
  it.each([1, 2] as const)(
    'drops a QoS %s message over Mosquitto\'s message_size_limit (PUBACK/PUBREC 0x95) as too large and delivers the ones after it without reconnecting',
    async (qos) => {
      const m = await cloud({ extra: ['message_size_limit 200'] });
      const obs = await observer(m, ['sites/17/#']);
      const gw = await gatewayWith([bridge(m, { rules: [{ pattern: 'sensors/#', qos, remote_prefix: 'sites/17/' }] })]);
      const b = gw.gateway.bridges[0]!;
      await waitFor(() => b.linkState === 'up', 'the bridge up');
      const local = await client(gw.url);
      await publishAll(local, 'sensors/t', [Buffer.from('a1'), Buffer.alloc(500, 66), Buffer.from('a3'), Buffer.from('a4')], 1);

      await obs.until((ms) => ms.length >= 3, 'the three small messages at the cloud');
      await waitFor(() => b.backlog().rows === 0, 'the outbox drained');
      await sleep(300);
      expect(obs.messages.map((x) => x.payload.toString())).toEqual(['a1', 'a3', 'a4']);
      expect(b.backlog().drops).toMatchObject({ 'too-large': 1 });
      expect(b.counters.reconnects).toBe(0);
    },
  );
});

describe('rules with a local prefix', () => {
  it('never sends a message to an empty remote topic ("dev" and "dev/" under local_prefix "dev/"), so the cloud does not close the link and the drain goes on', async () => {
    const m = await cloud();
    const obs = await observer(m, ['#']);
    const gw = await gatewayWith([bridge(m, { rules: [{ pattern: '#', qos: 1, local_prefix: 'dev/' }] })]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up');
    const local = await client(gw.url);
    for (const [topic, payload] of [['dev/a', 'd1'], ['dev', 'd2'], ['dev/', 'd3'], ['dev/b', 'd4']]) await local.publishAsync(topic!, payload!, { qos: 1 });

    await obs.until((ms) => ms.some((x) => x.payload.toString() === 'd4'), 'the last message at the cloud');
    await waitFor(() => b.backlog().rows === 0, 'the outbox drained');
    expect(obs.messages.filter((x) => x.payload.toString().startsWith('d')).map((x) => `${x.topic}=${x.payload}`)).toEqual(['a=d1', 'b=d4']);
    expect(b.counters.reconnects).toBe(0);
  });
});

describe('retained messages from the cloud', () => {
  it.each([4, 5] as const)('stay retained locally when the cloud takes them as retained while the MQTT %s link is up', async (protocol) => {
    const m = await cloud();
    const gw = await gatewayWith([bridge(m, { protocol, rules: [{ pattern: 'cmd/#', direction: 'in', qos: 1, remote_prefix: 'sites/17/' }] })]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up');
    const cloudClient = await Observer.connect(m, ['nothing/here']);
    cleanups.push(() => cloudClient.close());
    await sleep(300); // the bridge's SUBSCRIBE is done
    await cloudClient.client.publishAsync('sites/17/cmd/config', 'v1', { qos: 1, retain: true });
    await waitFor(() => b.counters.inbound === 1, 'the message through the bridge');

    // A local app that subscribes afterwards still gets it: it is retained here too.
    const later = await client(gw.url);
    const got: { topic: string; retain: boolean }[] = [];
    later.on('message', (topic, _p, packet) => got.push({ topic, retain: packet.retain }));
    await later.subscribeAsync('cmd/#', { qos: 1 });
    await waitFor(() => got.length === 1, 'the retained message locally', 2000);
    expect(got).toEqual([{ topic: 'cmd/config', retain: true }]);
  });
});

describe('QoS 2 towards a cloud with a Receive Maximum', () => {
  it('lets the QoS 2 exchanges in flight finish before a graceful stop, so after five restarts mid-drain the cloud refuses nothing and gets each message once', async () => {
    // Mosquitto's default Receive Maximum (20); the helper's config turns it off.
    const m = await cloud({ extra: ['max_inflight_messages 20'] });
    const obs = await observer(m, ['sites/17/#']);
    const settings = bridge(m, { rules: [{ pattern: 'sensors/#', qos: 2, remote_prefix: 'sites/17/' }] });
    let gw = await startBridgedGateway({ bridges: [settings] });
    const dir = gw.dir;
    cleanups.push(() => gw.dispose());
    const local = await localClient(gw.url);
    await publishAll(local, 'sensors/t', Array.from({ length: 3000 }, (_, i) => Buffer.from(String(i + 1))));
    await local.endAsync(true);
    const refusals: unknown[] = [];
    for (let restart = 0; restart < 5; restart++) {
      await waitFor(() => gw.gateway.bridges[0]!.linkState === 'up', 'the bridge up');
      const before = obs.messages.length;
      await waitFor(() => obs.messages.length > before + 50, 'the drain under way');
      await gw.stop();
      refusals.push(...gw.logs().filter((l) => l.msg.startsWith('cloud refused')));
      gw = await startBridgedGateway({ bridges: [settings], dir });
    }
    await waitFor(() => gw.gateway.bridges[0]!.backlog().rows === 0, 'the outbox drained', 20_000);
    await obs.until((ms) => ms.length >= 3000, 'all 3000 at the cloud');
    await sleep(300);
    refusals.push(...gw.logs().filter((l) => l.msg.startsWith('cloud refused')));
    expect(refusals).toEqual([]);
    const payloads = obs.messages.map((x) => Number(x.payload.toString()));
    expect(payloads).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
  }, 60_000);
});

describe('retained messages to a 3.1.1 cloud with identity envelope', () => {
  it('are cleared at the cloud when they are cleared locally (an empty retained message is not wrapped)', async () => {
    const m = await cloud();
    const gw = await gatewayWith([bridge(m, { protocol: 4, identity: 'envelope' })]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up');
    const local = await client(gw.url);
    await local.publishAsync('sensors/door', 'open', { qos: 1, retain: true });
    await local.publishAsync('sensors/door', '', { qos: 1, retain: true });
    await waitFor(() => b.backlog().rows === 0 && b.outbound === 2, 'both sent');
    await sleep(200);
    // A new subscriber at the cloud gets no retained message for the topic.
    const late = await observer(m, ['sites/17/sensors/#']);
    await sleep(500);
    expect(late.messages).toEqual([]);
  });
});

describe('a cloud without retained messages', () => {
  it('takes the MQTT 5 bridge, whose retained Will it refused (CONNACK 0x9A), and its retained messages, sent without the flag', async () => {
    const m = await cloud({ extra: ['retain_available false'] });
    const obs = await observer(m, ['sites/17/#']);
    const gw = await gatewayWith([bridge(m)]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up');
    const local = await client(gw.url);
    await local.publishAsync('sensors/door', 'open', { qos: 1, retain: true });
    await local.publishAsync('sensors/t', '21', { qos: 1 });
    await obs.until((ms) => ms.length === 2, 'both messages at the cloud');
    expect(obs.messages.map((x) => `${x.topic}=${x.payload} retain=${x.retain}`)).toEqual(['sites/17/sensors/door=open retain=false', 'sites/17/sensors/t=21 retain=false']);
    await waitFor(() => b.backlog().rows === 0, 'the outbox drained');
    expect(b.counters.reconnects).toBe(0);
    expect(gw.logs().filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      `broker 127.0.0.1:${m.tlsPort} takes no retained messages (CONNACK 0x9a for our retained Will); connecting again with the state topic and retained messages sent without the retain flag`,
    ]);
  });
});

/**
 * What a crashed gateway leaves in its cloud session: `count` QoS 2 PUBLISHes the cloud took
 * (and answered with PUBREC) whose PUBREL never came, sent here over a raw socket that is then
 * destroyed.
 */
async function leaveHalfDoneQos2(m: Mosquitto, clientId: string, count: number): Promise<void> {
  const socket = tcpConnect({ host: '127.0.0.1', port: m.plainPort });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const gen = (p: object): Buffer => mqttPacket.generate(p as mqttPacket.Packet, { protocolVersion: 5 });
  let received = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => void (received = Buffer.concat([received, d])));
  socket.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: false, keepalive: 60, properties: { sessionExpiryInterval: 3600 } }));
  for (let i = 1; i <= count; i++) socket.write(gen({ cmd: 'publish', topic: 'sites/17/old', payload: Buffer.from(`old${i}`), qos: 2, messageId: 40_000 + i, retain: false, dup: false }));
  // CONNACK (2 + 3 bytes at least) and one PUBREC (4 bytes) per message.
  await waitFor(() => received.length >= 5 + 4 * count, 'the PUBRECs');
  socket.destroy();
  await sleep(100);
}

describe('a cloud session left with half-done QoS 2 exchanges (a crash)', () => {
  it('is started afresh by a bridge without inbound rules, whose QoS 2 messages then go in order without a refusal', async () => {
    const m = await cloud({ extra: ['max_inflight_messages 20'] });
    await leaveHalfDoneQos2(m, 'site-17', 20);
    const obs = await observer(m, ['sites/17/sensors/#']);
    const gw = await gatewayWith([bridge(m, { client_id: 'site-17', rules: [{ pattern: 'sensors/#', qos: 2, remote_prefix: 'sites/17/' }] })]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up');
    const local = await client(gw.url);
    await publishAll(local, 'sensors/t', Array.from({ length: 50 }, (_, i) => Buffer.from(String(i + 1))));
    await obs.until((ms) => ms.length >= 50, 'the 50 messages at the cloud');
    expect(obs.messages.map((x) => Number(x.payload.toString()))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(gw.logs().filter((l) => l.msg.startsWith('cloud refused'))).toEqual([]);
  });
});

describe('the fresh first session of a bridge without inbound rules', () => {
  it('is taken up with Clean Start 0 at once, so a Mosquitto restart keeps it: the bridge finds its session present after the cloud came back', async () => {
    const m = await cloud({ persistence: true });
    const gw = await gatewayWith([bridge(m, { client_id: 'site-17', rules: [{ pattern: 'sensors/#', qos: 2, remote_prefix: 'sites/17/' }] })]);
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up');
    await m.stop();
    await waitFor(() => b.linkState === 'down', 'the bridge down');
    await m.start();
    await waitFor(() => b.linkState === 'up', 'the bridge up again', 10_000);
    const connected = gw.logs().filter((l) => l.msg === 'connected to the cloud broker');
    expect(connected.map((l) => l['sessionPresent'])).toEqual([true, true]);
  }, 20_000);
});

describe('QoS 2 towards a 3.1.1 cloud', () => {
  it('delivers a backlog of 1,000 to a Mosquitto with its default max_inflight_messages (20), which acknowledges and drops a 3.1.1 client\'s QoS 2 messages over it', async () => {
    const m = await cloud({ extra: ['max_inflight_messages 20'] });
    const obs = await observer(m, ['sites/17/#']);
    const proxy = new FaultProxy(m.tlsPort);
    cleanups.push(() => proxy.close());
    await proxy.start();
    proxy.refuse();
    const gw = await gatewayWith([{ ...bridge(m, { protocol: 4, rules: [{ pattern: 'sensors/#', qos: 2, remote_prefix: 'sites/17/' }] }), url: `mqtts://127.0.0.1:${proxy.port}` }]);
    const b = gw.gateway.bridges[0]!;
    const local = await client(gw.url);
    await publishAll(local, 'sensors/t', Array.from({ length: 1000 }, (_, i) => Buffer.from(String(i + 1))));
    proxy.resume();
    await waitFor(() => b.backlog().rows === 0, 'the backlog sent', 15_000);
    await obs.until((ms) => ms.length >= 1000, 'the 1,000 messages at the cloud', 3000);
    expect(obs.messages.map((x) => Number(x.payload.toString()))).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  }, 30_000);
});

describe('rules of different QoS', () => {
  it('keep per-source order at a cloud that delivers a QoS 2 message on PUBREL: a QoS 1 message is not sent past a QoS 2 one still waiting for it', async () => {
    const m = await cloud();
    const obs = await observer(m, ['sites/17/#']);
    const proxy = new FaultProxy(m.tlsPort);
    cleanups.push(() => proxy.close());
    await proxy.start();
    proxy.refuse();
    const rules = [
      { pattern: 'sensors/a/#', qos: 2, remote_prefix: 'sites/17/' },
      { pattern: 'sensors/b/#', qos: 1, remote_prefix: 'sites/17/' },
    ];
    const gw = await gatewayWith([{ ...bridge(m, { rules }), url: `mqtts://127.0.0.1:${proxy.port}` }]);
    const b = gw.gateway.bridges[0]!;
    const local = await client(gw.url);
    // One source, alternating between the QoS 2 and the QoS 1 topic; its backlog drains pipelined.
    for (let i = 1; i <= 200; i++) await local.publishAsync(i % 2 === 1 ? 'sensors/a/t' : 'sensors/b/t', String(i), { qos: 1 });
    proxy.resume();
    await waitFor(() => b.backlog().rows === 0, 'the backlog sent', 15_000);
    await obs.until((ms) => ms.length >= 200, 'the 200 messages at the cloud', 3000);
    expect(obs.messages.map((x) => Number(x.payload.toString()))).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  }, 30_000);
});
