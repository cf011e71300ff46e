/**
 * A 3.1.1 cloud that takes QoS 0 only (Mosquitto `max_qos 0`) and a rule with `qos: 1`.
 * Mosquitto closes a 3.1.1 connection before CONNACK for a Will above max_qos (our state topic's
 * Will is QoS 1), and closes the link on a QoS 1 PUBLISH; 3.1.1 cannot say why. The bridge
 * retried the same CONNECT for ever and the outbox only grew. Now: after the closes, the Will
 * goes at QoS 0, the cloud is taken to have Maximum QoS 0 (as an MQTT 5 cloud says in CONNACK),
 * and the rows go at QoS 0, each deleted only once the cloud answered a PINGREQ sent after it.
 *
 *   MQTT.js ──▶ Gateway ──▶ outbox ──▶ bridge (3.1.1, rule qos 1) ──(TLS, FaultProxy)──▶ Mosquitto (max_qos 0) ──▶ observer
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Mosquitto, Observer } from '../helpers/mosquitto.js';
import { localClient, publishAll, sleep, startBridgedGateway, waitFor } from '../helpers/bridge-gateway.js';

const certs = testCerts();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

async function site(protocol: 4 | 5) {
  const m = new Mosquitto({ extra: ['max_qos 0'] });
  cleanups.push(() => m.dispose());
  await m.start();
  const cloudSide = await Observer.connect(m, ['sites/17/#'], { protocolVersion: 4 });
  cleanups.push(() => cloudSide.close());
  const proxy = new FaultProxy(m.tlsPort);
  cleanups.push(() => proxy.close());
  await proxy.start();
  const gw = await startBridgedGateway({
    bridges: [
      {
        name: 'cloud',
        url: `mqtts://127.0.0.1:${proxy.port}`,
        ca: certs.ca.crt,
        protocol,
        state_topic: 'sites/17/state',
        keepalive: '30s',
        connect_timeout: '2s',
        backoff: { base: '50ms', cap: '200ms' },
        rules: [{ pattern: 'sensors/#', qos: 1, remote_prefix: 'sites/17/' }],
      },
    ],
  });
  cleanups.push(() => gw.dispose());
  const local = await localClient(gw.url, { clientId: 'pump' });
  cleanups.push(() => local.endAsync(true));
  return { m, cloudSide, proxy, gw, b: gw.gateway.bridges[0]!, local };
}

const data = (o: Observer): string[] => o.messages.filter((x) => x.topic === 'sites/17/sensors/t').map((x) => x.payload.toString());

describe('a 3.1.1 cloud that takes QoS 0 only', () => {
  it('takes the bridge with its Will at QoS 0 after closes before CONNACK, then gets the messages of a qos 1 rule at QoS 0, in order, the outbox emptied, the link held, one warning naming max_qos', async () => {
    const { m, cloudSide, proxy, gw, b, local } = await site(4);
    const payloads = Array.from({ length: 30 }, (_, i) => `m-${i + 1}`);
    await publishAll(local, 'sensors/t', payloads.map((p) => Buffer.from(p)));

    await waitFor(() => b.linkState === 'up', 'the bridge to connect', 10_000);
    await cloudSide.until((ms) => data(cloudSide).length >= 30 && ms.length > 0, 'the 30 messages at the cloud', 10_000);
    await waitFor(() => b.backlog().rows === 0 && b.backlog().inflight === 0, 'an empty outbox');
    expect(data(cloudSide)).toEqual(payloads);
    expect(cloudSide.messages.filter((x) => x.topic === 'sites/17/sensors/t').every((x) => x.qos === 0)).toBe(true);
    await cloudSide.until((ms) => ms.some((x) => x.topic === 'sites/17/state' && x.payload.toString() === 'online'), 'the online state');
    expect(b.backlog().drops).toEqual({});
    expect(b.counters.reconnects).toBe(0);
    expect(m.log()).not.toContain('Too high QoS in PUBLISH');

    const lines = gw.logs().filter((l) => l.bridge === 'cloud' && typeof l.msg === 'string' && l.msg.includes('QoS 0 only'));
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        'warn',
        `broker 127.0.0.1:${proxy.port} closed the connection before CONNACK 6 times in a row, with our QoS 1 Will as well as without its retain flag, as a 3.1.1 broker that takes QoS 0 only (Mosquitto max_qos 0) does: connecting again with the state topic at QoS 0, and messages of rules with qos 1 or 2 go at QoS 0, each deleted from the outbox once the broker answered a PINGREQ sent after it`,
      ],
    ]);
  }, 20_000);

  it.each([4, 5] as const)('keeps a message sent at QoS 0 in the outbox until the cloud answered a PINGREQ sent after it (MQTT %i): with the answers cut off it stays, and it is sent again on the next link', async (protocol) => {
    const { cloudSide, proxy, b, local } = await site(protocol);
    await waitFor(() => b.linkState === 'up', 'the bridge to connect', 10_000);
    await local.publishAsync('sensors/t', 'first', { qos: 1 });
    await cloudSide.until(() => data(cloudSide).includes('first'), 'the first message at the cloud');
    await waitFor(() => b.backlog().rows === 0, 'the first message deleted');

    proxy.halfOpenLink(); // what the bridge sends reaches the cloud; no PINGRESP comes back
    await local.publishAsync('sensors/t', 'unconfirmed', { qos: 1 });
    await cloudSide.until(() => data(cloudSide).includes('unconfirmed'), 'the message at the cloud');
    await sleep(500);
    expect(b.backlog().rows).toBe(1); // at the cloud, but the cloud has not said so

    proxy.drop(); // the link is lost, the answers with it
    proxy.resume();
    await waitFor(() => b.backlog().rows === 0, 'the message deleted after the next link', 10_000);
    expect(data(cloudSide)).toEqual(['first', 'unconfirmed', 'unconfirmed']); // sent again: at least once, never lost
  }, 20_000);
});
