/**
 * One message, two bridges, one of them full with when_full: reject: the message is stored
 * at both or at none (src/store/append-groups.ts), so the publisher's resend after the
 * refusal reaches the other bridge's cloud once, not twice.
 *
 *   MQTT.js v5 ──▶ Gateway ──▶ outbox ─┬─ bridge a (drop-oldest) ──mTLS──▶ Mosquitto A (up)
 *                                      └─ bridge b (reject, 1 row) ─mTLS──▶ Mosquitto B (down, then up)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mtlsBridge } from '../helpers/bridge-config.js';
import { CloudObserver } from '../helpers/cloud-observer.js';
import { Mosquitto, freePort } from '../helpers/mosquitto.js';
import { localClient, startBridgedGateway, waitFor } from '../helpers/bridge-gateway.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

async function cloud(): Promise<Mosquitto> {
  const m = new Mosquitto({ requireCertificate: true, persistence: true });
  cleanups.push(() => m.dispose());
  m.plainPort = await freePort();
  m.tlsPort = await freePort();
  await m.start();
  return m;
}

function bridge(name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return mtlsBridge(port, {
    name,
    client_id: `site-17-${name}`,
    protocol: 5,
    keepalive: '2s',
    connect_timeout: '2s',
    state_topic: `sites/17/${name}/state`,
    rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1, remote_prefix: `${name}/` }],
    ...extra,
  });
}

describe('when_full: reject at one of several bridges', () => {
  it('refuses a message at every bridge when one full reject bridge refuses it, so the resend reaches the other cloud exactly once', async () => {
    const [cloudA, cloudB] = [await cloud(), await cloud()];
    const obsA = await CloudObserver.connect(cloudA, ['a/#']);
    cleanups.push(() => obsA.close());
    const obsB = await CloudObserver.connect(cloudB, ['b/#']);
    cleanups.push(() => obsB.close());
    await cloudB.stop(); // b's outbox fills while its cloud is away

    const gw = await startBridgedGateway({
      bridges: [bridge('a', cloudA.tlsPort), bridge('b', cloudB.tlsPort, { buffer: { max_rows: 1, when_full: 'reject' } })],
    });
    cleanups.push(() => gw.dispose());
    const [a, b] = gw.gateway.bridges;
    await waitFor(() => a!.linkState === 'up', 'bridge a up', 10_000);
    const pub = await localClient(gw.url, { clientId: 'boiler-7' });
    cleanups.push(() => pub.endAsync(true));

    await pub.publishAsync('sensors/t', 'first', { qos: 1 }); // fills b (one row)
    expect(b!.backlog().rows).toBe(1);

    const refused = await pub.publishAsync('sensors/t', 'second', { qos: 1 }).then(
      () => undefined,
      (err: unknown) => err as { code?: number },
    );
    expect(refused?.code).toBe(0x97);
    expect(b!.backlog().drops['full-rejected']).toBe(1);
    expect(a!.backlog().drops).toEqual({});

    await cloudB.start();
    await waitFor(() => b!.backlog().rows === 0, 'bridge b drained', 15_000);
    await pub.publishAsync('sensors/t', 'second', { qos: 1 }); // the publisher's retry, accepted now

    await obsA.until((ms) => ms.filter((m) => m.payload.toString() === 'second').length >= 1, '"second" at cloud A', 10_000);
    await obsB.until((ms) => ms.filter((m) => m.payload.toString() === 'second').length >= 1, '"second" at cloud B', 15_000);
    // Give a stray second copy time to arrive.
    await new Promise((r) => setTimeout(r, 500));
    const atA = obsA.messages.filter((m) => m.topic === 'a/sensors/t').map((m) => m.payload.toString());
    expect(atA).toEqual(['first', 'second']);
    const atB = obsB.messages.filter((m) => m.topic === 'b/sensors/t').map((m) => m.payload.toString());
    expect(atB).toEqual(['first', 'second']);
    expect(b!.backlog().drops['full-rejected']).toBe(1);
  }, 60_000);
});
