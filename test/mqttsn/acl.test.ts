import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { MsgType, ReturnCode } from '../../src/mqttsn/packets.js';
import { MemorySnSessionStore } from '../../src/mqttsn/persistence.js';
import { accessControl } from '../helpers/auth-harness.js';
import { silentLog } from '../helpers/broker-harness.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(acl: string): Promise<SnHarness> {
  const broker = new Broker({}, { log: silentLog, access: await accessControl({ acl }) });
  h = await startSnGateway('', { broker });
  return h;
}

const ACL = ['mqttsn s1', 'write sensors/%c/#', 'read cmd/%c/#', 'read shared/a/#'].join('\n');

describe('MQTT-SN clients under an ACL with mqttsn sections', () => {
  it('answer a denied PUBLISH with PUBACK 0x03 and do not route it; an allowed one goes through', async () => {
    const h = await start(ACL);
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s1');
    const ok = await c.register('sensors/s1/temp');
    const no = await c.register('sensors/s2/temp');
    const id1 = c.publish(no.topicId, 'x', { qos: 1 });
    const denied = await c.next(MsgType.PUBACK, 2000, (p) => p.msgId === id1);
    expect(denied.returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    const id2 = c.publish(ok.topicId, '21.5', { qos: 1 });
    expect((await c.next(MsgType.PUBACK, 2000, (p) => p.msgId === id2)).returnCode).toBe(ReturnCode.ACCEPTED);
    await until(() => seen.length === 1, 'the allowed publish');
    expect(seen.map((m) => m.topic)).toEqual(['sensors/s1/temp']);
    expect(h.gw.metrics.dropped('not-authorized')).toBe(1);
  });

  it('answer a denied SUBSCRIBE with SUBACK 0x03, and deliver only readable topics of a partly granted wildcard', async () => {
    const h = await start(ACL);
    const c = await h.client({ autoAck: true });
    await c.connect('s1');
    expect((await c.subscribe('secret/#', 1)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    expect((await c.subscribe('shared/#', 0)).returnCode).toBe(ReturnCode.ACCEPTED);
    h.broker.publish({ topic: 'shared/b/x', payload: Buffer.from('no'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    h.broker.publish({ topic: 'shared/a/x', payload: Buffer.from('yes'), qos: 0, retain: false, origin: { kind: 'system', id: 't' } });
    const p = await c.next(MsgType.PUBLISH);
    expect(p.payload.toString()).toBe('yes');
    expect(await c.none(MsgType.PUBLISH, 200)).toBe(true);
  });

  it('check a QoS -1 publish from an address without a session as mqttsn qos-1:<source address>, as README and acl.example say', async () => {
    const broker = new Broker({}, { log: silentLog, access: await accessControl({ acl: `${ACL}\nmqttsn qos-1:127.0.0.1\nwrite door/#\n` }) });
    h = await startSnGateway('predefined_topics: { 1: door/front, 2: window/back }', { broker });
    const seen = h.watch('#');
    const c = await h.client();
    c.publish(1, 'open', { qos: -1, topicIdType: 1 });
    c.publish(2, 'open', { qos: -1, topicIdType: 1 });
    await until(() => seen.length === 1 && h!.gw.metrics.dropped('not-authorized') === 1, 'one QoS -1 publish through, one denied');
    expect(seen.map((m) => m.topic)).toEqual(['door/front']);
    for (const doc of ['README.md', 'config/acl.example']) expect(readFileSync(doc, 'utf8')).toContain('mqttsn qos-1:<source address>');
  });

  it('refuse a Will topic the sensor may not write (CONNACK 0x03, WILLTOPICRESP 0x03) and never publish such a Will, also one restored from the store', async () => {
    const clock = new FakeClock();
    const store = new MemorySnSessionStore();
    // Stored before the ACL was in place: a Will on a topic the sensor may not write.
    store.save('s2', JSON.stringify({ will: { topic: 'cmd/valve', qos: 0, retain: false, payload: Buffer.from('open').toString('base64') }, ka: 10, sleep: 0, ended: false, subs: [], topics: [] }));
    const broker = new Broker({}, { log: silentLog, access: await accessControl({ acl: ACL }) });
    h = await startSnGateway('', { broker, clock, store });
    const seen = h.watch('#');
    const c = await h.client();
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 10, clientId: 's1' });
    await c.next(MsgType.WILLTOPICREQ);
    c.send({ type: MsgType.WILLTOPIC, qos: 0, retain: false, topic: 'cmd/valve' });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    expect(await c.connect('s1', { duration: 10, will: { topic: 'sensors/s1/status', payload: 'offline' } })).toBe(ReturnCode.ACCEPTED);
    c.send({ type: MsgType.WILLTOPICUPD, qos: 0, retain: false, topic: 'cmd/valve' });
    expect((await c.next(MsgType.WILLTOPICRESP)).returnCode).toBe(ReturnCode.NOT_SUPPORTED);
    clock.advance(15_001); // 1.5 × Keep Alive: s1 is lost, and s2 is not back after the restart
    await until(() => seen.length >= 1, 'the Will of s1');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((m) => `${m.topic} ${m.payload.toString()}`)).toEqual(['sensors/s1/status offline']);
  });

  it('are not checked when the ACL file has no mqttsn section', async () => {
    const h = await start('user alice\nreadwrite #\n');
    const seen = h.watch('#');
    const c = await h.client();
    await c.connect('s9');
    const t = await c.register('anything/at/all');
    const id = c.publish(t.topicId, 'x', { qos: 1 });
    expect((await c.next(MsgType.PUBACK, 2000, (p) => p.msgId === id)).returnCode).toBe(ReturnCode.ACCEPTED);
    await until(() => seen.length === 1, 'the publish');
  });
});
