/**
 * 100,000 random and mutated datagrams at a live gateway over real UDP: no crash, every
 * structure bounded, and a well-behaved sensor is still served afterwards.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../src/mqttsn/packets.js';
import { startSnGateway } from '../helpers/mqttsn-gateway.js';
import { prng } from '../helpers/prng.js';
import { snFuzzDatagram } from '../helpers/sn-fuzz.js';

describe('MQTT-SN fuzzing a live gateway', () => {
  it('survives 100k random and mutated datagrams with bounded sessions, queues and memory', async () => {
    const h = await startSnGateway('max_clients: 200\nmax_buffered_messages: 20\nmax_topics_per_client: 32\nrate_limit: { datagrams_per_second: 1000000, burst: 1000000 }\nqos_minus_one_sources: [127.0.0.0/8]');
    try {
      const rand = prng(20261128);
      const clients = await Promise.all(Array.from({ length: 8 }, () => h.client()));
      const rssBefore = process.memoryUsage().rss;
      for (let i = 0; i < 100_000; i++) {
        const buf = snFuzzDatagram(rand);
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
