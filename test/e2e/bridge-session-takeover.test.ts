/**
 * Another client takes the bridge's client id over at a real Mosquitto (a cloned gateway, a
 * test tool left running with the production id). The broker keeps only the newest connection
 * of an id and closes the older one (3.1.1 [MQTT-3.1.4-2]; MQTT 5 [MQTT-3.1.4-3] adds a
 * DISCONNECT 0x8E, which Mosquitto 2.0.11 does not send), so the bridge sees only the close. The two then take
 * the id from each other for as long as both run: the operator must read in the bridge's log
 * what to look for, and the messages must survive the flapping.
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge ──(mTLS, client id site-17)──▶ Mosquitto ◀── intruder (plain, client id site-17)
 */
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { mtlsBridge } from '../helpers/bridge-config.js';
import { localClient, publishAll, sleep, startBridgedGateway, waitFor, type BridgedGateway } from '../helpers/bridge-gateway.js';
import { Mosquitto, Observer } from '../helpers/mosquitto.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

async function intruder(m: Mosquitto, protocolVersion: 4 | 5, reconnectPeriod: number): Promise<MqttClient> {
  const c = mqtt.connect(m.plainUrl, { clientId: 'site-17', protocolVersion, reconnectPeriod, clean: false });
  c.on('error', () => undefined);
  cleanups.push(() => c.endAsync(true));
  await new Promise<void>((resolve) => c.once('connect', () => resolve()));
  return c;
}

describe('another client taking over the bridge client id', () => {
  it.each([5, 4] as const)('MQTT %s: every loss of the link names the client id as the thing to check, each flap is logged and counted, and the messages sent meanwhile all arrive once the intruder goes', async (protocol) => {
    const m = new Mosquitto({ requireCertificate: true });
    cleanups.push(() => m.dispose());
    await m.start();
    const cloudSide = await Observer.connect(m, ['sites/17/sensors/#']);
    cleanups.push(() => cloudSide.close());
    const gw: BridgedGateway = await startBridgedGateway({
      bridges: [
        mtlsBridge(m.tlsPort, {
          protocol,
          keepalive: '5s',
          backoff: { base: '100ms', cap: '300ms' },
          state_topic: 'sites/17/state',
          rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, remote_prefix: 'sites/17/' }],
        }),
      ],
    });
    cleanups.push(() => gw.dispose());
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge to connect');

    // The intruder takes the idle link over first, then comes back 200 ms after each time the
    // bridge took the id back, for as long as the 30 publishes take (3 s).
    const other = await intruder(m, protocol, 200);
    await waitFor(() => b.counters.reconnects === 1, 'the first takeover');
    const local = await localClient(gw.url, { clientId: 'pump' });
    cleanups.push(() => local.endAsync(true));
    const payloads = Array.from({ length: 30 }, (_, i) => Buffer.from(`m-${i + 1}`));
    for (const p of payloads) {
      await publishAll(local, 'sensors/t', [p]);
      await sleep(100);
    }
    await other.endAsync(true);

    // Once it has gone, everything drains.
    await cloudSide.until((ms) => new Set(ms.map((x) => x.payload.toString())).size === 30, 'all 30 messages at the cloud', 10_000);
    await waitFor(() => b.linkState === 'up' && b.backlog().rows === 0, 'an empty outbox');
    const first = new Map<string, number>();
    cloudSide.messages.forEach((x, i) => first.has(x.payload.toString()) || first.set(x.payload.toString(), i));
    expect([...first.keys()]).toEqual(payloads.map((p) => p.toString()));

    // Mosquitto saw the takeovers.
    expect(m.log()).toMatch(/Client site-17 already connected, closing old connection/);
    // Each flap is a warning of its own and counted. The first came before any publish: it names
    // the client id to check. (A close within a second of a publish not yet acknowledged keeps
    // the plain sentence: it may be about that message, see bridge-311-no-qos2.test.ts.)
    const downs = gw.logs().filter((l) => l.bridge === 'cloud' && l.msg === 'bridge down');
    expect(downs.length).toBeGreaterThanOrEqual(3);
    expect(b.counters.reconnects).toBe(downs.length);
    const plain = `broker 127.0.0.1:${m.tlsPort} closed the connection while connected`;
    const hinted = `${plain}: if this repeats, another client may be using our client id "site-17" (a broker keeps only the newest connection of an id): check bridges[].client_id`;
    expect(downs[0]!.reason).toBe(hinted);
    for (const d of downs) {
      expect(d.level).toBe('warn');
      expect([plain, hinted]).toContain(d.reason);
    }
    expect(downs.filter((d) => d.reason === hinted).length).toBeGreaterThanOrEqual(downs.length / 2);
  }, 30_000);
});
