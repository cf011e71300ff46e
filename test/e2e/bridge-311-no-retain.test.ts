/**
 * A 3.1.1 cloud without retained messages (Mosquitto `retain_available false`). MQTT 5 would
 * answer our retained Will with CONNACK 0x9A [MQTT-3.2.2-13] and the bridge would connect again
 * without the flag; a 3.1.1 Mosquitto closes the connection before CONNACK, which says nothing,
 * so the bridge retried the same CONNECT for ever and the outbox only grew.
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge (3.1.1) ──(mTLS)──▶ Mosquitto (retain_available false) ──▶ observer
 */
import { afterEach, describe, expect, it } from 'vitest';
import { publishAll, waitFor } from '../helpers/bridge-gateway.js';
import { startCloudSite } from '../helpers/cloud-site.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

describe('a 3.1.1 cloud without retained messages', () => {
  it('takes the bridge after three closes before CONNACK, with the state and a retained message sent without the flag, everything in order, and one warning', async () => {
    const { cloud: m, cloudSide, gw, bridge: b, local } = await startCloudSite(cleanups, { mosquitto: ['retain_available false'], protocol: 4, qos: 1 });
    const payloads = Array.from({ length: 10 }, (_, i) => `m-${i + 1}`);
    await publishAll(local, 'sensors/t', payloads.slice(0, 5).map((p) => Buffer.from(p)));
    await local.publishAsync('sensors/t', 'm-6', { qos: 1, retain: true });
    await publishAll(local, 'sensors/t', payloads.slice(6).map((p) => Buffer.from(p)));

    await waitFor(() => b.linkState === 'up', 'the bridge to connect');
    await cloudSide.until((ms) => ms.filter((x) => x.topic === 'sites/17/sensors/t').length === 10, 'the 10 messages at the cloud');
    expect(cloudSide.messages.filter((x) => x.topic === 'sites/17/sensors/t').map((x) => x.payload.toString())).toEqual(payloads);
    await cloudSide.until((ms) => ms.some((x) => x.topic === 'sites/17/state' && x.payload.toString() === 'online'), 'the online state');
    await waitFor(() => b.backlog().rows === 0, 'an empty outbox');
    expect(b.backlog().drops).toEqual({});

    const lines = gw.logs().filter((l) => l.bridge === 'cloud' && l.msg.includes('retain'));
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        'warn',
        `broker 127.0.0.1:${m.tlsPort} closed the connection before CONNACK 3 times in a row, as a 3.1.1 broker without retained messages does for our retained Will: connecting again with the state topic and retained messages sent without the retain flag`,
      ],
    ]);
  });
});
