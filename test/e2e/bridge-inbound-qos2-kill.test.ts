/**
 * An inbound rule at QoS 2 and a kill -9 of outpost in the middle of the exchange: the
 * cloud's session (clean_start: false) keeps the exchange and sends the PUBLISH again
 * (same packet id, DUP) when the restarted bridge connects. The ids delivered locally and
 * not released are on the disk (src/store/inbound-qos2.ts), so the resend is answered with
 * PUBREC and not delivered to local subscribers a second time.
 *
 *   cloud publisher ──▶ Mosquitto ──TLS──▶ FaultProxy (deaf: our PUBREC never gets back) ──▶ outpost child ──▶ local subscriber
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { localClient, sleep, waitFor } from '../helpers/bridge-gateway.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';
import { mtlsBridge } from '../helpers/bridge-config.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});

/** A local subscriber on outpost's cmd/#: the payloads it got, in order. */
async function subscriber(url: string): Promise<{ client: MqttClient; got: string[] }> {
  const client = await localClient(url, { clientId: `app-${Math.random().toString(16).slice(2, 8)}` });
  client.on('error', () => undefined);
  cleanups.push(() => client.endAsync(true));
  const got: string[] = [];
  client.on('message', (_t, payload) => got.push(payload.toString()));
  await client.subscribeAsync('cmd/#', { qos: 1 });
  return { client, got };
}

describe('inbound QoS 2 across a kill -9 of outpost', () => {
  it('does not deliver a QoS 2 message locally twice when outpost is killed after delivering it and before the cloud got its PUBREC', async () => {
    const m = new Mosquitto({ requireCertificate: true });
    cleanups.push(() => m.dispose());
    await m.start();
    const proxy = new FaultProxy(m.tlsPort);
    await proxy.start();
    cleanups.push(() => proxy.close());
    const cloudPub = mqtt.connect(m.plainUrl, { protocolVersion: 5, clientId: 'cloud-pub', reconnectPeriod: 0 });
    cleanups.push(() => cloudPub.endAsync(true));
    await new Promise<void>((resolve, reject) => {
      cloudPub.once('connect', () => resolve());
      cloudPub.once('error', reject);
    });

    const dir = mkdtempSync(join(tmpdir(), 'outpost-inbound-qos2-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { file: config, url } = await writeProcessConfig(dir, {
      bridges: [
        mtlsBridge(proxy.port, {
          keepalive: '2s',
          connect_timeout: '2s',
          rules: [{ pattern: 'cmd/#', direction: 'in', qos: 2, remote_prefix: 'sites/17/' }],
        }),
      ],
    });

    let outpost = await OutpostProcess.start(config);
    cleanups.push(() => outpost.crash());
    const first = await subscriber(url);
    // The link and the inbound subscription work: a first message goes through.
    const probe = setInterval(() => void cloudPub.publishAsync('sites/17/cmd/probe', 'probe', { qos: 2 }).catch(() => undefined), 200);
    await waitFor(() => first.got.includes('probe'), 'the probe at the local subscriber', 15_000).finally(() => clearInterval(probe));
    await sleep(300); // the probes' exchanges end

    proxy.deafLink(); // the cloud's PUBLISH gets through, our PUBREC does not
    void cloudPub.publishAsync('sites/17/cmd/x', 'one', { qos: 2 }).catch(() => undefined);
    await waitFor(() => first.got.includes('one'), '"one" at the local subscriber');
    await sleep(300); // its record commits (the PUBREC waits for it, stuck in the proxy)
    await outpost.crash();
    first.client.end(true);

    // The restarted bridge may connect only once the new subscriber is in place.
    proxy.refuse();
    proxy.drop();
    outpost = await OutpostProcess.start(config);
    const second = await subscriber(url);
    proxy.resume();
    // Mosquitto resends "one" (DUP, same id) first on the resumed session, then sends "two".
    await cloudPub.publishAsync('sites/17/cmd/x', 'two', { qos: 2 });
    await waitFor(() => second.got.includes('two'), '"two" at the local subscriber', 15_000);
    await sleep(300);
    expect(second.got.filter((p) => p !== 'probe')).toEqual(['two']);
  }, 60_000);
});
