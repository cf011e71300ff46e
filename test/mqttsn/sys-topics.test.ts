/**
 * `$SYS/...` is where the gateway reports on itself (serial device and bridge states,
 * retained): MQTT clients may not publish there nor make it their Will topic, whatever the
 * ACL says, and neither may a sensor. Before, a sensor's REGISTER + PUBLISH to
 * "$SYS/outpost/serial/boiler/state" reached every $SYS subscriber, retained: one sensor
 * (or anyone who can send UDP on the LAN) could show a dead device as online.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const pause = (ms = 100) => new Promise((r) => setTimeout(r, ms));
const STATE = '$SYS/outpost/serial/boiler/state';

describe('MQTT-SN sensors and $SYS topics', () => {
  it('refuses a PUBLISH to a $SYS topic with PUBACK 0x03 at every QoS and publishes nothing', async () => {
    h = await startSnGateway();
    const seen = h.watch('$SYS/#');
    const c = await h.client();
    await c.connect('spoofer');
    const { topicId } = await c.register(STATE);
    for (const qos of [0, 1, 2] as const) {
      const msgId = c.publish(topicId, 'online', { qos, retain: true });
      const ack = await c.next(MsgType.PUBACK);
      expect(ack).toMatchObject({ topicId, msgId: qos === 0 ? 0 : msgId, returnCode: 0x03 });
    }
    await pause();
    expect(seen).toEqual([]);
    expect(h.gw.metrics.dropped('not-authorized')).toBe(3);
    // Its other topics are served as before.
    const { topicId: ok } = await c.register('sensors/boiler');
    c.publish(ok, 'x', { qos: 1 });
    expect((await c.next(MsgType.PUBACK)).returnCode).toBe(0);
  });

  it('drops a QoS -1 PUBLISH whose predefined id names a $SYS topic', async () => {
    h = await startSnGateway(`predefined_topics: { 9: "${STATE}", 10: sensors/ok }`);
    const seen = h.watch('$SYS/#');
    const ok = h.watch('sensors/#');
    const c = await h.client();
    c.publish(9, 'online', { qos: -1, topicIdType: 1 });
    c.publish(10, 'fine', { qos: -1, topicIdType: 1 });
    await until(() => ok.length === 1, 'the QoS -1 message on sensors/ok');
    expect(seen).toEqual([]);
    expect(h.gw.metrics.dropped('not-authorized')).toBe(1);
  });

  it('refuses a $SYS Will topic: CONNACK 0x03 in the CONNECT prompts, WILLTOPICRESP 0x03 for WILLTOPICUPD', async () => {
    h = await startSnGateway();
    const c = await h.client();
    c.send({ type: MsgType.CONNECT, will: true, cleanSession: true, protocolId: 1, duration: 60, clientId: 'will-sys' });
    await c.next(MsgType.WILLTOPICREQ);
    c.send({ type: MsgType.WILLTOPIC, qos: 1, retain: true, topic: STATE });
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(0x03);
    expect(await c.connect('will-upd', { will: { topic: 'wills/ok', payload: 'gone' } })).toBe(0);
    c.send({ type: MsgType.WILLTOPICUPD, qos: 0, retain: true, topic: STATE });
    expect((await c.next(MsgType.WILLTOPICRESP)).returnCode).toBe(0x03);
    expect(h.gw.session('will-upd')?.will?.topic).toBe('wills/ok');
  });
});
