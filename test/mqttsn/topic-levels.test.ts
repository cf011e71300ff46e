/**
 * broker.max_topic_levels holds for MQTT-SN sensors as for MQTT clients: through the real
 * composition root (the limit is a broker setting), with real UDP datagrams.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { silentLog } from '../helpers/broker-harness.js';
import { within } from '../helpers/gateway-fixture.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';

let gw: Gateway;
let dir: string;
const clients: SnTestClient[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-sn-levels-'));
  const yaml = [
    'listeners: [{ type: mqtt, host: 127.0.0.1, port: 0 }]',
    `store: { dir: ${JSON.stringify(join(dir, 'data'))} }`,
    'broker: { max_topic_levels: 3 }',
    'mqttsn: { hosts: [127.0.0.1], port: 0, advertise: { interval: 0 }, predefined_topics: { 9: a/b/c/d, 8: a/b/c } }',
  ].join('\n');
  gw = new Gateway(parseConfigText(yaml, 'levels.yaml'), { log: silentLog });
  await gw.start(new AbortController().signal);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await within(gw.stop(), 5000, 'the gateway to stop');
  rmSync(dir, { recursive: true, force: true });
});

async function sensor(): Promise<SnTestClient> {
  const c = await SnTestClient.open({ port: gw.mqttsn!.addresses[0]!.port });
  clients.push(c);
  return c;
}

const refused = () => gw.mqttsn!.metrics.dropped('too-many-levels');

describe('MQTT-SN topics and broker.max_topic_levels', () => {
  it('refuses a REGISTER, a SUBSCRIBE and a PUBLISH to a predefined id deeper than the limit with 0x02 "invalid topic ID", and takes those within it', async () => {
    const c = await sensor();
    expect(await c.connect('deep-1')).toBe(0);
    expect(await c.register('a/b/c/d')).toMatchObject({ returnCode: ReturnCode.INVALID_TOPIC_ID, topicId: 0 });
    expect((await c.register('a/b/c')).returnCode).toBe(0);
    expect((await c.subscribe('a/b/c/#', 1)).returnCode).toBe(ReturnCode.INVALID_TOPIC_ID);
    expect((await c.subscribe('a/b/#', 1)).returnCode).toBe(0);
    const deep = c.publish(9, 'x', { qos: 1, topicIdType: 1 });
    expect((await c.next(MsgType.PUBACK, 2000, (p) => p.msgId === deep)).returnCode).toBe(ReturnCode.INVALID_TOPIC_ID);
    const ok = c.publish(8, 'y', { qos: 1, topicIdType: 1 });
    expect((await c.next(MsgType.PUBACK, 2000, (p) => p.msgId === ok)).returnCode).toBe(0);
    expect(refused()).toBe(3);
  });

  it('refuses a Will topic deeper than the limit in CONNECT and in WILLTOPICUPD', async () => {
    const c = await sensor();
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 60, clientId: 'deep-2' });
    await c.next(MsgType.WILLTOPICREQ);
    c.send({ type: MsgType.WILLTOPIC, qos: 0, retain: false, topic: 'w/x/y/z' });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    expect(await c.connect('deep-2', { will: { topic: 'w/x/y', payload: 'gone' } })).toBe(0);
    c.send({ type: MsgType.WILLTOPICUPD, qos: 0, retain: false, topic: 'w/x/y/z' });
    expect((await c.next(MsgType.WILLTOPICRESP)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    expect(refused()).toBe(2);
  });
});
