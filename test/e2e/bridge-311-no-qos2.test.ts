/**
 * A 3.1.1 cloud without QoS 2 (Mosquitto `max_qos 1`; AWS IoT Core is another) and a rule
 * with `qos: 2`. MQTT 5 would say Maximum QoS 1 in CONNACK and the forwarder would send
 * QoS 1 [MQTT-3.2.2-11]; 3.1.1 has no way to say it, and Mosquitto closes the link on the
 * first QoS 2 PUBLISH. The same row is sent first again after every reconnect, so nothing
 * would ever drain.
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge (3.1.1, rule qos 2) ──(mTLS)──▶ Mosquitto (max_qos 1) ──▶ observer
 */
import { afterEach, describe, expect, it } from 'vitest';
import { publishAll, waitFor } from '../helpers/bridge-gateway.js';
import { startCloudSite } from '../helpers/cloud-site.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

describe('a 3.1.1 cloud that closes the link on QoS 2 publishes', () => {
  it('gets the messages of a qos 2 rule at QoS 1 after three closes right after the same QoS 2 message, all in order, nothing dropped, with one warning naming the rule key', async () => {
    const { cloud: m, cloudSide, gw, bridge: b, local } = await startCloudSite(cleanups, { mosquitto: ['max_qos 1'], protocol: 4, qos: 2 });
    const payloads = Array.from({ length: 50 }, (_, i) => `m-${i + 1}`);
    await publishAll(local, 'sensors/t', payloads.map((p) => Buffer.from(p)));

    const data = () => cloudSide.messages.filter((x) => x.topic === 'sites/17/sensors/t');
    await cloudSide.until(() => new Set(data().map((x) => x.payload.toString())).size === 50, 'all 50 messages at the cloud', 15_000);
    await waitFor(() => b.backlog().rows === 0 && b.backlog().inflight === 0, 'an empty outbox');
    const first: string[] = [];
    for (const x of data()) if (!first.includes(x.payload.toString())) first.push(x.payload.toString());
    expect(first).toEqual(payloads);
    expect(b.backlog().drops).toEqual({});

    const warns = gw.logs().filter((l) => l.bridge === 'cloud' && typeof l.msg === 'string' && l.msg.startsWith('the cloud closes the link on QoS 2'));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ level: 'warn', topic: 'sites/17/sensors/t', closes: 3 });
    expect(warns[0]!.msg).toBe(
      'the cloud closes the link on QoS 2 messages, which a 3.1.1 cloud cannot refuse otherwise: sending them at QoS 1 from now on; set qos: 1 in the rules of bridges[]',
    );
    // Those closes came right after a publish: the link lost is not blamed on another client with our id.
    const downs = gw.logs().filter((l) => l.bridge === 'cloud' && l.msg === 'bridge down');
    expect(downs.length).toBeGreaterThanOrEqual(3);
    for (const d of downs) expect(d.reason).toBe(`broker 127.0.0.1:${m.tlsPort} closed the connection while connected`);
    // The link holds once QoS 2 is no longer sent.
    const reconnects = b.counters.reconnects;
    await local.publishAsync('sensors/t', 'after', { qos: 1 });
    await cloudSide.until((ms) => ms.some((x) => x.payload.toString() === 'after'), 'a later message');
    expect(b.counters.reconnects).toBe(reconnects);
    expect(b.linkState).toBe('up');
  }, 30_000);
});
