/**
 * A name that is not UTF-8 (MQTT-SN v1.2 §5.3.1 ClientId, §5.3.12 TopicName: UTF-8 strings)
 * in an otherwise well-formed message: a sensor whose firmware writes "temp/°C" in Latin-1
 * must hear its refusal, as for a NUL or a wildcard, not silence. Silence made it retransmit
 * N_retry times and then take the gateway for lost (§6.13), reconnecting for ever.
 * The octets are written by hand, from the spec, not with the gateway's encoder.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { startSnGateway, until, type SnHarness } from '../helpers/mqttsn-gateway.js';

let h: SnHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** "temp/°C" with ° as the Latin-1 octet 0xB0, which no UTF-8 sequence starts with. */
const LATIN1_TOPIC = '74656d702f b0 43';

describe('MQTT-SN names that are not UTF-8', () => {
  it('answers a REGISTER of a topic name that is not UTF-8 with REGACK 0x02 and registers nothing', async () => {
    h = await startSnGateway();
    const c = await h.client();
    await c.connect('latin1-reg');
    // Length 13, REGISTER, TopicId 0x0000, MsgId 0x0007, "temp/\xB0C"
    c.sendRaw(hex(`0d 0a 0000 0007 ${LATIN1_TOPIC}`));
    const ack = await c.next(MsgType.REGACK);
    expect(ack).toMatchObject({ msgId: 7, topicId: 0, returnCode: 0x02 });
    expect(h.gw.metrics.dropped('invalid-topic')).toBe(1);
    // The gateway goes on serving the sensor.
    expect((await c.register('temp/C')).returnCode).toBe(0);
  });

  it('answers a SUBSCRIBE to a topic name that is not UTF-8 with SUBACK 0x02', async () => {
    h = await startSnGateway();
    const c = await h.client();
    await c.connect('latin1-sub');
    // Length 12, SUBSCRIBE, Flags QoS 1 / TopicIdType 0, MsgId 0x0009, "temp/\xB0C"
    c.sendRaw(hex(`0c 12 20 0009 ${LATIN1_TOPIC}`));
    const ack = await c.next(MsgType.SUBACK);
    expect(ack).toMatchObject({ msgId: 9, topicId: 0, returnCode: 0x02 });
  });

  it('answers an UNSUBSCRIBE of a topic name that is not UTF-8 with UNSUBACK', async () => {
    h = await startSnGateway();
    const c = await h.client();
    await c.connect('latin1-unsub');
    c.sendRaw(hex(`0c 14 00 000a ${LATIN1_TOPIC}`));
    expect((await c.next(MsgType.UNSUBACK)).msgId).toBe(10);
  });

  it('refuses a CONNECT whose client id is not UTF-8 with CONNACK 0x03 and connects nothing', async () => {
    h = await startSnGateway();
    const c = await h.client();
    // Length 7, CONNECT, Flags CleanSession, ProtocolId 1, Duration 60, ClientId 0xFF
    c.sendRaw(hex('07 04 04 01 003c ff'));
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(0x03);
    // Not connected: its next message is answered with DISCONNECT, not acted on.
    c.sendRaw(hex('02 16')); // PINGREQ
    await c.next(MsgType.DISCONNECT);
  });

  it('refuses a Will topic that is not UTF-8 with CONNACK 0x03, and a WILLTOPICUPD with WILLTOPICRESP 0x03', async () => {
    h = await startSnGateway();
    const c = await h.client();
    c.sendRaw(hex('0b 04 0c 01 003c 6c6174696e')); // CONNECT Will + CleanSession, "latin"
    await c.next(MsgType.WILLTOPICREQ);
    c.sendRaw(hex(`0a 07 00 ${LATIN1_TOPIC}`)); // WILLTOPIC QoS 0, "temp/\xB0C"
    expect((await c.next(MsgType.CONNACK)).returnCode).toBe(0x03);

    await c.connect('latin-upd', { will: { topic: 'wills/ok', payload: 'gone' } });
    c.sendRaw(hex(`0a 1a 00 ${LATIN1_TOPIC}`)); // WILLTOPICUPD
    expect((await c.next(MsgType.WILLTOPICRESP)).returnCode).toBe(0x03);
    // The Will set at CONNECT is still the one published on loss.
    expect(h.gw.session('latin-upd')?.will?.topic).toBe('wills/ok');
  });

  it('answers a PINGREQ whose client id is not UTF-8 with DISCONNECT (no such sleeper) and stays up', async () => {
    h = await startSnGateway();
    const c = await h.client();
    c.sendRaw(hex('03 16 ff'));
    await c.next(MsgType.DISCONNECT);
    const other = await h.client();
    await other.connect('after');
    await until(() => h!.gw.session('after')?.state === 'active', 'the next sensor connected');
  });
});
