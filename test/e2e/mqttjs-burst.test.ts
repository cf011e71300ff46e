/**
 * MQTT.js (and so Node-RED) does not keep to the Receive Maximum a server announces: it sends
 * every QoS 1 publish at once. On a bridged topic each PUBACK waits for the outbox commit, so a
 * burst is a burst of unacknowledged publishes. The gateway slows such a client down (its
 * socket is not read while the commits catch up) instead of cutting it off.
 *
 *   MQTT.js v5 ──(500 QoS 1 at once)──▶ Gateway ──▶ outbox (bridge down)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { localClient, startBridgedGateway } from '../helpers/bridge-gateway.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

describe('an MQTT.js burst of QoS 1 publishes on a bridged topic', () => {
  it('is acknowledged whole on one connection and stored, with no DISCONNECT', async () => {
    const gw = await startBridgedGateway({
      bridges: [{ name: 'cloud', url: 'mqtt://127.0.0.1:1', rules: [{ pattern: 'sensors/#', direction: 'out', qos: 1 }] }],
      store: { commit_window: '50ms' },
    });
    cleanups.push(() => gw.dispose());
    const c = await localClient(gw.url, { clientId: 'node-red', protocolVersion: 5, reconnectPeriod: 100 });
    cleanups.push(() => c.endAsync(true));
    const disconnects: number[] = [];
    let connects = 0;
    c.on('disconnect', (p) => void disconnects.push(p.reasonCode ?? 0));
    c.on('connect', () => void connects++);

    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) => c.publishAsync('sensors/t', `m-${i}`, { qos: 1 })));

    expect(disconnects).toEqual([]);
    expect(connects).toBe(0); // no reconnect after the first connect
    const b = gw.gateway.bridges[0]!;
    expect(b.backlog().rows).toBe(n);
  });
});
