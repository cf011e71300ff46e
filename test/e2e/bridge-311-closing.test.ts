/**
 * A 3.1.1 cloud that closes the link on one message (src/bridge/closing-head.ts): a real
 * Mosquitto 2.0 with max_packet_size closes a 3.1.1 client that sends a larger packet (it
 * could not announce the size; with message_size_limit alone it acknowledges and drops the
 * message instead). Without the detection the bridge sent that message first again after
 * every reconnect, for ever, and nothing behind it reached the cloud.
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge (MQTT 3.1.1, mTLS) ──▶ Mosquitto (max_packet_size 300) ──▶ observer
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Mosquitto, Observer, freePort } from '../helpers/mosquitto.js';
import { localClient, startBridgedGateway, waitFor } from '../helpers/bridge-gateway.js';
import { mtlsBridge } from '../helpers/bridge-config.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

describe('a 3.1.1 cloud that closes the link on an oversized message', () => {
  it('sets the message aside after the link closed right after it three times in a row, counted and logged with topic and size, and drains the rest', async () => {
    const m = new Mosquitto({ requireCertificate: true, extra: ['max_packet_size 300'] });
    cleanups.push(() => m.dispose());
    m.plainPort = await freePort();
    m.tlsPort = await freePort();
    await m.start();
    const obs = await Observer.connect(m, ['sites/17/#']);
    cleanups.push(() => obs.close());

    const gw = await startBridgedGateway({
      bridges: [
        mtlsBridge(m.tlsPort, {
          protocol: 4,
          keepalive: '2s',
          connect_timeout: '2s',
          state_topic: 'sites/17/state',
          rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, remote_prefix: 'sites/17/' }],
        }),
      ],
    });
    cleanups.push(() => gw.dispose());
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'bridge up', 10_000);
    const pub = await localClient(gw.url, { clientId: 'boiler-7' });
    cleanups.push(() => pub.endAsync(true));

    await pub.publishAsync('sensors/t', 'small-1', { qos: 1 });
    await obs.until((ms) => ms.some((x) => x.payload.toString() === 'small-1'), 'small-1 at the cloud');
    await pub.publishAsync('sensors/big', Buffer.alloc(1000, 0x78), { qos: 1 });
    await pub.publishAsync('sensors/t', 'small-2', { qos: 1 });
    await pub.publishAsync('sensors/t', 'small-3', { qos: 1 });

    await obs.until((ms) => ms.some((x) => x.payload.toString() === 'small-3'), 'small-3 at the cloud', 15_000);
    const got = obs.messages.filter((x) => x.topic === 'sites/17/sensors/t').map((x) => x.payload.toString());
    expect([...new Set(got)]).toEqual(['small-1', 'small-2', 'small-3']);
    expect(obs.messages.some((x) => x.topic === 'sites/17/sensors/big')).toBe(false);
    await waitFor(() => b.backlog().rows === 0, 'an empty outbox');
    expect(b.backlog().drops['cloud-refused']).toBe(1);
    const line = gw.logs().find((l) => l.level === 'error' && /closed the link right after this message/.test(l.msg));
    expect(line).toMatchObject({ topic: 'sites/17/sensors/big', size: 1000 + 'sites/17/sensors/big'.length, closes: 3 });
  }, 60_000);
});
