/**
 * An MQTT 5 cloud that takes QoS 0 only (Mosquitto `max_qos 0`). It must refuse a CONNECT whose
 * Will QoS exceeds its Maximum QoS, with CONNACK 0x9B [MQTT-3.2.2-12]; the bridge's Will (the
 * offline state) is QoS 1, so without a fallback the bridge never connects and the outbox only
 * grows. Once connected, a client must send nothing above the announced Maximum QoS
 * [MQTT-3.2.2-11], the state messages included.
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge (MQTT 5) ──(mTLS)──▶ Mosquitto (max_qos 0) ──▶ observer
 */
import { afterEach, describe, expect, it } from 'vitest';
import { publishAll, waitFor } from '../helpers/bridge-gateway.js';
import { startCloudSite } from '../helpers/cloud-site.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

describe('an MQTT 5 cloud with Maximum QoS 0', () => {
  it('takes the bridge after it refused its QoS 1 Will (CONNACK 0x9b), then gets the messages and the online state at QoS 0, with one warning', async () => {
    const { cloud: m, cloudSide, gw, bridge: b, local } = await startCloudSite(cleanups, { mosquitto: ['max_qos 0'], protocol: 5, qos: 1 });
    const payloads = Array.from({ length: 20 }, (_, i) => `m-${i + 1}`);
    await publishAll(local, 'sensors/t', payloads.map((p) => Buffer.from(p)));

    await waitFor(() => b.linkState === 'up', 'the bridge to connect');
    await cloudSide.until((ms) => ms.filter((x) => x.topic === 'sites/17/sensors/t').length === 20, 'the 20 messages at the cloud');
    await waitFor(() => b.backlog().rows === 0, 'an empty outbox');
    expect(cloudSide.messages.filter((x) => x.topic === 'sites/17/sensors/t').map((x) => x.payload.toString())).toEqual(payloads);
    await cloudSide.until((ms) => ms.some((x) => x.topic === 'sites/17/state' && x.payload.toString() === 'online'), 'the online state');
    expect(b.counters.reconnects).toBe(0);

    const warns = gw.logs().filter((l) => l.bridge === 'cloud' && l.level === 'warn');
    expect(warns.map((l) => l.msg)).toEqual([
      `broker 127.0.0.1:${m.tlsPort} takes QoS 0 only (CONNACK 0x9b for our QoS 1 Will); connecting again with the state topic at QoS 0`,
    ]);
  });
});
