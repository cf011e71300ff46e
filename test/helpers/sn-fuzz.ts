/**
 * MQTT-SN fuzz datagrams, shared by the in-process gateway fuzz test and the live-gateway
 * fuzz run (scripts/fuzz-live.ts): random bytes, valid messages of most types in random
 * order, and valid messages with bytes overwritten and truncated. Seeded by the caller's rng.
 */
import { encode } from '../../src/mqttsn/encode.js';
import { MsgType, type Packet } from '../../src/mqttsn/packets.js';

const seeds: Packet[] = [
  { type: MsgType.CONNECT, will: false, cleanSession: true, protocolId: 1, duration: 30, clientId: 'fuzz-a' },
  { type: MsgType.CONNECT, will: true, cleanSession: false, protocolId: 1, duration: 30, clientId: 'fuzz-b' },
  { type: MsgType.REGISTER, topicId: 0, msgId: 1, topicName: 'fuzz/topic' },
  { type: MsgType.PUBLISH, dup: false, qos: 1, retain: false, topicIdType: 0, topicId: 1, msgId: 2, payload: Buffer.from('payload') },
  { type: MsgType.PUBLISH, dup: false, qos: -1, retain: true, topicIdType: 2, topicId: 0x6162, msgId: 0, payload: Buffer.from('x') },
  { type: MsgType.SUBSCRIBE, dup: false, qos: 2, msgId: 3, topicIdType: 0, topicName: 'fuzz/#', topicId: undefined },
  { type: MsgType.UNSUBSCRIBE, msgId: 4, topicIdType: 0, topicName: 'fuzz/#', topicId: undefined },
  { type: MsgType.WILLTOPIC, qos: 1, retain: false, topic: 'w' },
  { type: MsgType.WILLMSG, payload: Buffer.from('w') },
  { type: MsgType.PINGREQ, clientId: 'fuzz-b' },
  { type: MsgType.DISCONNECT, duration: 10 },
  { type: MsgType.PUBREL, msgId: 2 },
  { type: MsgType.SEARCHGW, radius: 1 },
  { type: MsgType.WILLTOPICUPD, qos: 0, retain: false, topic: 'u' },
];
const wires = seeds.map(encode);

/** One fuzz datagram: 30 % random bytes, 20 % a valid message, 50 % a mutated one. */
export function snFuzzDatagram(rand: () => number): Buffer {
  const r = rand();
  if (r < 0.3) return Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
  const buf = Buffer.from(wires[Math.floor(rand() * wires.length)]!);
  if (r < 0.5) return buf; // valid, in random order
  const flips = 1 + Math.floor(rand() * 4);
  for (let f = 0; f < flips; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
  return rand() < 0.2 ? buf.subarray(0, Math.floor(rand() * buf.length)) : buf;
}
