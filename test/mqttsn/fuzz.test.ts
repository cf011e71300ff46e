/**
 * 100,000 random and mutated datagrams at a live gateway over real UDP: no crash, every
 * structure bounded, and a well-behaved sensor is still served afterwards.
 */
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/mqttsn/encode.js';
import { MsgType, type Packet } from '../../src/mqttsn/packets.js';
import { startSnGateway } from '../helpers/mqttsn-gateway.js';
import { prng } from '../helpers/prng.js';

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

describe('MQTT-SN fuzzing a live gateway', () => {
  it('survives 100k random and mutated datagrams with bounded sessions, queues and memory', async () => {
    const h = await startSnGateway('max_clients: 200\nmax_buffered_messages: 20\nmax_topics_per_client: 32\nrate_limit: { datagrams_per_second: 1000000, burst: 1000000 }\nqos_minus_one_sources: [127.0.0.0/8]');
    try {
      const rand = prng(20261128);
      const clients = await Promise.all(Array.from({ length: 8 }, () => h.client()));
      const wires = seeds.map(encode);
      const rssBefore = process.memoryUsage().rss;
      for (let i = 0; i < 100_000; i++) {
        let buf: Buffer;
        const r = rand();
        if (r < 0.3) {
          buf = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
        } else if (r < 0.5) {
          buf = Buffer.from(wires[Math.floor(rand() * wires.length)]!); // valid, in random order
        } else {
          buf = Buffer.from(wires[Math.floor(rand() * wires.length)]!);
          const flips = 1 + Math.floor(rand() * 4);
          for (let f = 0; f < flips; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
          if (rand() < 0.2) buf = buf.subarray(0, Math.floor(rand() * buf.length));
        }
        clients[i % clients.length]!.sendRaw(buf);
        if (i % 250 === 249) {
          // Pace the sender so the gateway (same process) really receives the datagrams.
          const deadline = Date.now() + 100;
          while (h.gw.metrics.datagramsIn < i - 500 && Date.now() < deadline) await new Promise((r2) => setTimeout(r2, 1));
        }
      }
      await new Promise((r2) => setTimeout(r2, 300));
      const m = h.gw.metrics;
      expect(m.datagramsIn).toBeGreaterThan(90_000); // loopback may drop a few under load
      expect(m.totalDrops).toBeGreaterThan(10_000);
      expect(h.gw.sessionCount).toBeLessThanOrEqual(200);
      expect(h.gw.byPeer.size).toBeLessThanOrEqual(clients.length * 2);
      for (const s of h.gw.byId.values()) {
        expect(s.queue.length).toBeLessThanOrEqual(20);
        expect(s.topics.size).toBeLessThanOrEqual(32);
      }
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
      // Still serving.
      const good = await h.client();
      expect(await good.connect('after-fuzz')).toBe(0);
      const { topicId } = await good.register('ok');
      good.publish(topicId, 'x', { qos: 1 });
      expect((await good.next(MsgType.PUBACK)).returnCode).toBe(0);
    } finally {
      await h.close();
    }
  }, 60_000);
});
