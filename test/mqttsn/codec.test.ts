import { describe, expect, it } from 'vitest';
import { decode } from '../../src/mqttsn/decode.js';
import { encapsulate, encode } from '../../src/mqttsn/encode.js';
import { MsgType, NOT_UTF8, shortName, shortTopicId, type Packet } from '../../src/mqttsn/packets.js';
import { prng } from '../helpers/prng.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string) => Buffer.from(s).toString('hex');

/** Every §5.4 message with its exact octets (1-octet Length form). */
const table: [string, Packet, string][] = [
  ['ADVERTISE', { type: 0x00, gwId: 7, duration: 900 }, '05 00 07 0384'],
  ['SEARCHGW', { type: 0x01, radius: 2 }, '03 01 02'],
  ['GWINFO from a gateway', { type: 0x02, gwId: 9, gwAdd: Buffer.alloc(0) }, '03 02 09'],
  ['GWINFO from a client', { type: 0x02, gwId: 9, gwAdd: hex('7f000001') }, '07 02 09 7f000001'],
  ['CONNECT with will and clean session', { type: 0x04, will: true, cleanSession: true, protocolId: 1, duration: 60, clientId: 'ab' }, '08 04 0c 01 003c 6162'],
  ['CONNACK', { type: 0x05, returnCode: 3 }, '03 05 03'],
  ['WILLTOPICREQ', { type: 0x06 }, '02 06'],
  ['WILLTOPIC', { type: 0x07, qos: 1, retain: true, topic: 'w' }, '04 07 30 77'],
  ['empty WILLTOPIC', { type: 0x07, qos: 0, retain: false, topic: undefined }, '02 07'],
  ['WILLMSGREQ', { type: 0x08 }, '02 08'],
  ['WILLMSG', { type: 0x09, payload: hex('dead') }, '04 09 dead'],
  ['REGISTER', { type: 0x0a, topicId: 0, msgId: 5, topicName: 'a/b' }, `09 0a 0000 0005 ${ascii('a/b')}`],
  ['REGACK', { type: 0x0b, topicId: 0x1234, msgId: 5, returnCode: 0 }, '07 0b 1234 0005 00'],
  ['PUBLISH QoS 2 DUP retain', { type: 0x0c, dup: true, qos: 2, retain: true, topicIdType: 0, topicId: 1, msgId: 2, payload: hex('01') }, '08 0c d0 0001 0002 01'],
  ['PUBLISH QoS -1 short name', { type: 0x0c, dup: false, qos: -1, retain: false, topicIdType: 2, topicId: 0x6162, msgId: 0, payload: Buffer.alloc(0) }, '07 0c 62 6162 0000'],
  ['PUBLISH QoS 1 predefined', { type: 0x0c, dup: false, qos: 1, retain: false, topicIdType: 1, topicId: 0xfffe, msgId: 0xffff, payload: hex('00') }, '08 0c 21 fffe ffff 00'],
  ['PUBACK', { type: 0x0d, topicId: 0x6162, msgId: 9, returnCode: 2 }, '07 0d 6162 0009 02'],
  ['PUBCOMP', { type: 0x0e, msgId: 1 }, '04 0e 0001'],
  ['PUBREC', { type: 0x0f, msgId: 2 }, '04 0f 0002'],
  ['PUBREL', { type: 0x10, msgId: 3 }, '04 10 0003'],
  ['SUBSCRIBE by name', { type: 0x12, dup: false, qos: 1, msgId: 4, topicIdType: 0, topicName: 'a/#', topicId: undefined }, `08 12 20 0004 ${ascii('a/#')}`],
  ['SUBSCRIBE predefined', { type: 0x12, dup: true, qos: 2, msgId: 4, topicIdType: 1, topicName: undefined, topicId: 7 }, '07 12 c1 0004 0007'],
  ['SUBACK', { type: 0x13, qos: 1, topicId: 0, msgId: 4, returnCode: 0 }, '08 13 20 0000 0004 00'],
  ['UNSUBSCRIBE short', { type: 0x14, msgId: 6, topicIdType: 2, topicName: undefined, topicId: 0x7878 }, '07 14 02 0006 7878'],
  ['UNSUBACK', { type: 0x15, msgId: 6 }, '04 15 0006'],
  ['PINGREQ', { type: 0x16, clientId: undefined }, '02 16'],
  ['PINGREQ with client id', { type: 0x16, clientId: 'c1' }, '04 16 6331'],
  ['PINGRESP', { type: 0x17 }, '02 17'],
  ['DISCONNECT', { type: 0x18, duration: undefined }, '02 18'],
  ['DISCONNECT with sleep duration', { type: 0x18, duration: 300 }, '04 18 012c'],
  ['WILLTOPICUPD', { type: 0x1a, qos: 2, retain: false, topic: 'x' }, '04 1a 40 78'],
  ['empty WILLTOPICUPD', { type: 0x1a, qos: 0, retain: false, topic: undefined }, '02 1a'],
  ['WILLTOPICRESP', { type: 0x1b, returnCode: 0 }, '03 1b 00'],
  ['WILLMSGUPD', { type: 0x1c, payload: hex('ff') }, '03 1c ff'],
  ['WILLMSGRESP', { type: 0x1d, returnCode: 1 }, '03 1d 01'],
];

describe('MQTT-SN codec, every §5.4 message both ways', () => {
  it.each(table)('%s encodes to its exact octets', (_name, packet, wire) => {
    expect(encode(packet).toString('hex')).toBe(hex(wire).toString('hex'));
  });

  it.each(table)('%s decodes from its exact octets', (_name, packet, wire) => {
    expect(decode(hex(wire))).toEqual({ ok: true, packet, encapsulation: undefined });
  });
});

describe('Length field (§5.2.1)', () => {
  const publishOfTotal = (total: number, threeOctet: boolean): Packet => ({
    type: 0x0c, dup: false, qos: 0, retain: false, topicIdType: 1, topicId: 1, msgId: 0,
    payload: Buffer.alloc(total - (threeOctet ? 4 : 2) - 5, 0x61),
  });

  it.each([253, 254, 255])('a %i-octet message uses the one-octet Length', (total) => {
    const wire = encode(publishOfTotal(total, false));
    expect(wire.length).toBe(total);
    expect(wire[0]).toBe(total);
    expect(decode(wire)).toMatchObject({ ok: true, packet: { payload: { length: total - 7 } } });
  });

  it('a message that would be 256 octets with a one-octet Length is sent as 258 octets with 0x01 and two octets', () => {
    const wire = encode(publishOfTotal(256, false));
    expect(wire.length).toBe(258);
    expect([...wire.subarray(0, 4)]).toEqual([0x01, 0x01, 0x02, 0x0c]);
    expect(decode(wire)).toMatchObject({ ok: true, packet: { payload: { length: 256 - 7 } } });
  });

  it.each([253, 254, 255, 256, 257])('the three-octet Length is accepted for a %i-octet message', (total) => {
    const wire = Buffer.alloc(total);
    wire[0] = 0x01;
    wire.writeUInt16BE(total, 1);
    wire[3] = MsgType.PUBLISH;
    expect(decode(wire)).toMatchObject({ ok: true, packet: { type: MsgType.PUBLISH, payload: { length: total - 9 } } });
  });

  it('the three-octet Length is accepted for the smallest message', () => {
    expect(decode(hex('01 0004 17'))).toEqual({ ok: true, packet: { type: MsgType.PINGRESP }, encapsulation: undefined });
  });

  it.each([
    ['shorter than its Length', '05 16 00', 'truncated'],
    ['longer than its Length', '02 16 00', 'bad-length'],
    ['Length 0', '00 16', 'bad-length'],
    ['one octet', '02', 'truncated'],
    ['three-octet Length below 4', '01 0003 16', 'bad-length'],
    ['three-octet Length cut short', '01 00', 'truncated'],
    ['an unknown MsgType', '02 03', 'unknown-type'],
    ['a reserved MsgType 0x11', '02 11', 'unknown-type'],
    ['a fixed-size message with a missing octet', '06 0d 0001 0002', 'truncated'],
    ['a fixed-size message with an extra octet', '08 0d 0001 0002 00 00', 'bad-length'],
    ['an MQTT-SN 2.0 style SEARCHGW body', '04 01 02 00', 'bad-length'],
    ['a reserved TopicIdType', '07 0c 03 0001 0001', 'malformed'],
    ['a SUBSCRIBE with an empty topic name', '05 12 00 0001', 'truncated'],
    ['an encapsulation inside an encapsulation', '03 fe 00 03 fe 00', 'nested-encapsulation'],
    ['an encapsulation header longer than the datagram', '09 fe 00 01', 'truncated'],
  ])('%s is a drop reason, not an exception', (_name, wire, reason) => {
    expect(decode(hex(wire))).toMatchObject({ ok: false, reason });
  });

  it('decodes a name that is not UTF-8 as NOT_UTF8, so the message is answered with its refusal', () => {
    expect(decode(hex('07 0a 0000 0001 ff'))).toMatchObject({ ok: true, packet: { type: MsgType.REGISTER, msgId: 1, topicName: NOT_UTF8 } });
    expect(decode(hex('07 04 04 01 003c ff'))).toMatchObject({ ok: true, packet: { type: MsgType.CONNECT, clientId: NOT_UTF8 } });
  });
});

describe('encapsulated messages (§5.5)', () => {
  it('unwraps the inner message and keeps Ctrl and the Wireless Node Id', () => {
    const wire = hex('06 fe 01 aabbcc 03 01 02');
    expect(decode(wire)).toEqual({
      ok: true,
      packet: { type: 0x01, radius: 2 },
      encapsulation: { ctrl: 1, wirelessNodeId: hex('aabbcc') },
    });
  });

  it('wraps a reply for the same forwarder and node', () => {
    const wire = encapsulate(encode({ type: 0x17 }), { ctrl: 3, wirelessNodeId: hex('0102') });
    expect(wire.toString('hex')).toBe('05fe0301020217');
  });
});

describe('short topic names (§6.7)', () => {
  it('map two octets to a two-character topic and back', () => {
    expect(shortName(0x6162)).toBe('ab');
    expect(shortTopicId('ab')).toBe(0x6162);
    expect(shortTopicId('abc')).toBeUndefined();
    expect(shortTopicId('€')).toBeUndefined();
  });

  it('read the two octets as UTF-8 and give nothing for octets that are not', () => {
    expect(shortName(0xc3a9)).toBe('é');
    expect(shortTopicId('é')).toBe(0xc3a9);
    expect(shortName(0x2f23)).toBe('/#');
    for (const bad of [0xfffe, 0xc080, 0xc1bf, 0x80c3, 0xe282, 0xc361]) expect(shortName(bad), bad.toString(16)).toBeUndefined();
  });
});

describe('decode on garbage', () => {
  it('never throws on 50k random and mutated datagrams', () => {
    const rand = prng(1234);
    const seeds = table.map(([, , w]) => hex(w));
    let ok = 0;
    for (let i = 0; i < 50_000; i++) {
      let buf: Buffer;
      if (i % 2 === 0) {
        buf = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
      } else {
        buf = Buffer.from(seeds[i % seeds.length]!);
        const flips = 1 + Math.floor(rand() * 3);
        for (let f = 0; f < flips && buf.length > 0; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      }
      const out = decode(buf);
      if (out.ok) ok++;
    }
    expect(ok).toBeGreaterThan(0); // mutations of valid messages still decode sometimes
  });
});
