/**
 * kill -9 of the real outpost process under load: every message a publisher got a PUBACK
 * for must reach the cloud, in order, duplicates only within the inflight window per crash
 * (issue 4: "kill -9 outpost during load and restart, every message a publisher had
 * PUBACKed arrives"). The DESIGN.md PUBACK rule (commit before acknowledge) and the
 * forwarder's delete-on-cloud-ack rule are what this proves.
 *
 *   MQTT.js (QoS 1, window 50) ──▶ outpost child process (SQLite, synchronous: full)
 *        │ records PUBACKed n        └──▶ bridge ──mTLS──▶ Mosquitto (stopped for part of the run)
 *        └──────────────────────────────────────────────────────▶ CloudObserver (persistent session)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { localClient, sleep } from '../helpers/bridge-gateway.js';
import { testCerts } from '../helpers/certs.js';
import { CloudObserver } from '../helpers/cloud-observer.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { OutpostProcess, writeProcessConfig } from '../helpers/outpost-process.js';

const certs = testCerts();
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
});

/**
 * Publishes n = next, next+1, … at QoS 1 with up to `window` unacknowledged, recording every
 * n whose PUBACK arrived, until the connection dies (no resend: a new publisher takes over).
 */
class Publisher {
  readonly acked = new Set<number>();
  next = 1;
  private client: MqttClient | undefined;

  async attach(url: string, window = 50): Promise<void> {
    const client = await localClient(url, { clientId: 'crash-pub', protocolVersion: 4 });
    client.on('error', () => undefined);
    this.client = client;
    let alive = true;
    client.once('close', () => (alive = false));
    for (let w = 0; w < window; w++) {
      void (async () => {
        while (alive) {
          const n = this.next++;
          try {
            await client.publishAsync('sensors/load', `n-${n}`, { qos: 1 });
          } catch {
            return;
          }
          this.acked.add(n);
        }
      })();
    }
  }

  detach(): void {
    this.client?.end(true);
    this.client = undefined;
  }
}

describe('kill -9 of outpost during load', () => {
  it('delivers every PUBACKed message to the cloud after five crashes, with the cloud down for part of the run', async () => {
    const CRASHES = 5;
    const INFLIGHT = 100;
    const cloud = new Mosquitto({ requireCertificate: true, persistence: true });
    cleanups.push(() => cloud.dispose());
    await cloud.start();
    const obs = await CloudObserver.connect(cloud, ['sites/17/#']);
    cleanups.push(() => obs.close());

    const dir = mkdtempSync(join(tmpdir(), 'outpost-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { file: config, port } = await writeProcessConfig(dir, {
      store: { synchronous: 'full' },
      bridges: [
        {
          name: 'cloud',
          url: `mqtts://127.0.0.1:${cloud.tlsPort}`,
          client_id: 'site-17',
          ca: certs.ca.crt,
          cert: certs.client.crt,
          key: certs.client.key,
          keepalive: '2s',
          connect_timeout: '2s',
          backoff: { base: '100ms', cap: '500ms' },
          inflight: INFLIGHT,
          rules: [{ pattern: 'sensors/#', remote_prefix: 'sites/17/' }],
        },
      ],
    });

    const pub = new Publisher();
    let cloudOutages = 0;
    for (let i = 0; i < CRASHES; i++) {
      const outpost = await OutpostProcess.start(config);
      await pub.attach(`mqtt://127.0.0.1:${port}`);
      if (i === 1) {
        await sleep(300);
        await cloud.stop(); // the cloud goes down mid-stream and stays down over two crashes
        cloudOutages++;
      }
      if (i === 3) await cloud.start();
      await sleep(1000);
      await outpost.crash();
      pub.detach();
    }
    expect(cloud.running).toBe(true);
    const last = await OutpostProcess.start(config);
    const acked = [...pub.acked].sort((a, b) => a - b);
    const arrived = () => new Set(obs.identified().map((m) => m.payload.toString()));
    await obs.until(() => {
      const got = arrived();
      return acked.every((n) => got.has(`n-${n}`));
    }, `all ${acked.length} PUBACKed messages at the cloud`, 30_000);
    await sleep(300); // late duplicates are counted too
    await last.stop();

    const r = obs.analyse();
    const ids = obs.identified();
    const payloadsInOrder = [...new Map(ids.map((m) => [m.id, Number(m.payload.toString().slice(2))])).values()];
    console.log(
      `kill -9 ×${CRASHES}: ${pub.next - 1} sent, ${acked.length} PUBACKed, ${r.distinct} distinct at the cloud ` +
        `(${r.distinct - acked.length} committed but not PUBACKed before a crash), ${r.bridgeDuplicates} bridge duplicates, ${r.cloudRedeliveries} cloud redeliveries`,
    );
    expect(acked.length).toBeGreaterThan(1000);
    expect(r.orderViolations).toEqual([]);
    // Every message is forwarded under one outpost-id: a payload never comes back under a new id.
    expect(new Set(payloadsInOrder).size).toBe(r.distinct);
    // First arrivals keep the publisher's order.
    expect(payloadsInOrder.every((n, i) => i === 0 || n > payloadsInOrder[i - 1]!)).toBe(true);
    expect(r.bridgeDuplicates).toBeLessThanOrEqual(INFLIGHT * (CRASHES + cloudOutages));
  }, 80_000);
});
