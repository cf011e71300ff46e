/**
 * MQTT 5 request/response across the bridge, with real peers: a cloud application (MQTT.js v5
 * on a real Mosquitto) asks a local responder (MQTT.js v5 on outpost) and the other way round.
 * The Response Topic must name the answer's topic on the responder's side, or the answer never
 * crosses the bridge back.
 *
 *   cloud app ── sites/17/cmd/valve (Response Topic sites/17/reply/1) ──▶ Mosquitto ──▶ bridge (in)
 *   local responder ◀── cmd/valve (Response Topic reply/1) ── outpost
 *   local responder ── reply/1 ──▶ outpost ──▶ bridge (out) ──▶ sites/17/reply/1 ──▶ cloud app
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { Mosquitto, Observer, freePort } from '../helpers/mosquitto.js';
import { localClient, sleep, startBridgedGateway, waitFor } from '../helpers/bridge-gateway.js';
import { mtlsBridge } from '../helpers/bridge-config.js';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

interface Got {
  topic: string;
  payload: string;
  responseTopic: string | undefined;
  correlation: string | undefined;
}

/** Repeats `act` every 300 ms until `done` (the bridge's inbound subscription may lag its link by a moment). */
async function repeatUntil(done: () => boolean, act: () => void, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    act();
    await sleep(300);
  }
}

function record(c: MqttClient): Got[] {
  const got: Got[] = [];
  c.on('message', (topic, payload, packet) =>
    got.push({ topic, payload: payload.toString(), responseTopic: packet.properties?.responseTopic, correlation: packet.properties?.correlationData?.toString() }),
  );
  return got;
}

async function setUp(): Promise<{ cloudApp: MqttClient; cloudGot: Got[]; local: MqttClient; localGot: Got[] }> {
  const m = new Mosquitto({ requireCertificate: true });
  cleanups.push(() => m.dispose());
  m.plainPort = await freePort();
  m.tlsPort = await freePort();
  await m.start();
  const gw = await startBridgedGateway({
    bridges: [
      mtlsBridge(m.tlsPort, {
        protocol: 5,
        backoff: { base: '100ms', cap: '500ms' },
        rules: [
          { pattern: 'cmd/#', direction: 'in', qos: 1, remote_prefix: 'sites/17/' },
          { pattern: 'reply/#', direction: 'out', qos: 1, remote_prefix: 'sites/17/' },
          { pattern: 'ask/#', direction: 'out', qos: 1, remote_prefix: 'sites/17/' },
          { pattern: 'answers/#', direction: 'in', qos: 1, remote_prefix: 'sites/17/' },
        ],
      }),
    ],
  });
  cleanups.push(() => gw.dispose());
  await waitFor(() => gw.gateway.bridges[0]!.linkState === 'up', 'the bridge up');
  const cloud = await Observer.connect(m, ['sites/17/reply/#', 'sites/17/ask/#']);
  cleanups.push(() => cloud.close());
  const local = await localClient(gw.url, { clientId: 'responder', protocolVersion: 5 });
  cleanups.push(() => local.endAsync(true));
  const cloudGot = record(cloud.client);
  const localGot = record(local);
  await local.subscribeAsync(['cmd/#', 'answers/#'], { qos: 1 });
  return { cloudApp: cloud.client, cloudGot, local, localGot };
}

describe('MQTT 5 request/response across the bridge', () => {
  it('hands a cloud request to the local responder with its Response Topic under the local name, so the answer reaches the cloud app', async () => {
    const { cloudApp, cloudGot, local, localGot } = await setUp();
    // The inbound subscription may take a moment after the link is up: ask until it is heard.
    await repeatUntil(
      () => localGot.length > 0,
      () => void cloudApp.publishAsync('sites/17/cmd/valve', 'open', { qos: 1, properties: { responseTopic: 'sites/17/reply/1', correlationData: Buffer.from('c-1') } }),
      'the request at the local responder',
    );
    const request = localGot[0]!;
    expect(request).toMatchObject({ topic: 'cmd/valve', payload: 'open', responseTopic: 'reply/1', correlation: 'c-1' });

    await local.publishAsync(request.responseTopic!, 'opened', { qos: 1, properties: { correlationData: Buffer.from(request.correlation!) } });
    await waitFor(() => cloudGot.some((g) => g.topic === 'sites/17/reply/1'), 'the answer at the cloud app', 8000);
    expect(cloudGot.find((g) => g.topic === 'sites/17/reply/1')).toMatchObject({ payload: 'opened', correlation: 'c-1' });
  });

  it('sends a local request to the cloud with its Response Topic under the cloud name, so the cloud\'s answer comes back down', async () => {
    const { cloudApp, cloudGot, local, localGot } = await setUp();
    await local.publishAsync('ask/firmware', 'which?', { qos: 1, properties: { responseTopic: 'answers/fw', correlationData: Buffer.from('c-2') } });
    await waitFor(() => cloudGot.some((g) => g.topic === 'sites/17/ask/firmware'), 'the request at the cloud', 8000);
    const request = cloudGot.find((g) => g.topic === 'sites/17/ask/firmware')!;
    expect(request).toMatchObject({ payload: 'which?', responseTopic: 'sites/17/answers/fw', correlation: 'c-2' });

    await repeatUntil(
      () => localGot.some((g) => g.topic === 'answers/fw'),
      () => void cloudApp.publishAsync(request.responseTopic!, '2.4.1', { qos: 1, properties: { correlationData: Buffer.from('c-2') } }),
      'the answer at the local app',
    );
    expect(localGot.find((g) => g.topic === 'answers/fw')).toMatchObject({ payload: '2.4.1', correlation: 'c-2' });
  });

  it('leaves a Response Topic that no rule maps back as it is', async () => {
    const { cloudApp, localGot } = await setUp();
    await repeatUntil(
      () => localGot.length > 0,
      () => void cloudApp.publishAsync('sites/17/cmd/pump', 'stop', { qos: 1, properties: { responseTopic: 'elsewhere/replies' } }),
      'the request at the local responder',
    );
    expect(localGot[0]).toMatchObject({ topic: 'cmd/pump', responseTopic: 'elsewhere/replies' });
  });
});
