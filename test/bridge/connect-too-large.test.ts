/**
 * A cloud broker whose maximum packet size is below our CONNECT (Mosquitto `max_packet_size`;
 * a long client id or state topic does it against a moderate one). Mosquitto closes the
 * connection on the CONNECT's fixed header without a CONNACK, which looked like a TLS or client
 * certificate problem ("is it a TLS port?"). A real Mosquitto, a real Gateway, over TLS.
 * After such a close the next CONNECT goes header first (src/bridge/connect-shape.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testCerts } from '../helpers/certs.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { sleep, startBridgedGateway, waitFor, type BridgedGateway } from '../helpers/bridge-gateway.js';
import { systemClock } from '../../src/core/clock.js';
import { collectStatus, StatusHistory } from '../../src/observability/status.js';
import { formatStatus } from '../../src/observability/status-command.js';
import { renderMetrics } from '../../src/observability/gateway-metrics.js';

const certs = testCerts();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

async function cloud(maxPacketSize: number): Promise<Mosquitto> {
  const m = new Mosquitto({ extra: [`max_packet_size ${maxPacketSize}`] });
  cleanups.push(() => m.dispose());
  await m.start();
  return m;
}

async function gatewayTo(m: Mosquitto, extra: Record<string, unknown>): Promise<BridgedGateway> {
  const gw = await startBridgedGateway({
    bridges: [
      {
        name: 'cloud',
        url: m.tlsUrl,
        ca: certs.ca.crt,
        connect_timeout: '2s',
        backoff: { base: '100ms', cap: '300ms' },
        rules: [{ pattern: 'sensors/#', qos: 1, remote_prefix: 'sites/17/' }],
        ...extra,
      },
    ],
  });
  cleanups.push(() => gw.dispose());
  return gw;
}

const tooLarge = (port: number, bytes: number): string =>
  `broker 127.0.0.1:${port} closed the connection on the header of our ${bytes}-byte CONNECT, before reading it: its maximum packet size (Mosquitto max_packet_size) is smaller than our CONNECT, so raise it on the cloud broker or shorten bridges[].client_id, username, password and state_topic`;

describe('a cloud broker whose maximum packet size is smaller than our CONNECT', () => {
  it.each([4, 5] as const)('is named as the cause (MQTT %i), with the setting on both sides, in the log and in the bridge\'s last failure, not taken for a TLS problem', async (protocol) => {
    const clientId = `site-17-${'x'.repeat(100)}`;
    const m = await cloud(100);
    const gw = await gatewayTo(m, { protocol, client_id: clientId });
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.lastFailure?.key === 'connect-too-large', 'the size diagnosis', 5000);
    const failures = b.counters.connectFailures;
    // Every attempt tells it again (a broker whose limit was raised would be seen at once).
    await waitFor(() => b.counters.connectFailures >= failures + 2, 'two more attempts', 5000);
    expect(b.lastFailure?.key).toBe('connect-too-large');

    const sentence = b.lastFailure!.sentence;
    const bytes = Number(/our (\d+)-byte CONNECT/.exec(sentence)?.[1]);
    expect(bytes).toBeGreaterThan(100); // the client id alone is 108 bytes
    expect(sentence).toBe(tooLarge(m.tlsPort, bytes));
    const warns = gw.logs().filter((l) => l.bridge === 'cloud' && l.level === 'warn').map((l) => l.msg);
    expect(warns).toContain(tooLarge(m.tlsPort, bytes));
    expect(m.log()).toContain('disconnected due to oversize packet');
    expect(b.linkState).toBe('down');
    // /status.json and `outpost status` say it too, with its kind.
    const st = collectStatus(gw.gateway, { version: 'test', now: Date.now(), uptimeSeconds: 1, health: { healthy: false, problems: [], components: {} }, history: new StatusHistory(1000, 2000, systemClock, () => []) });
    expect(st.bridges[0]!.lastFailure).toEqual({ sentence: tooLarge(m.tlsPort, bytes), kind: 'connect-too-large' });
    expect(formatStatus(st)).toContain(`bridge cloud: ${tooLarge(m.tlsPort, bytes)}\n`);
    const metrics = renderMetrics(gw.gateway, { now: () => Date.now(), eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true });
    expect(metrics).toContain('outpost_bridge_connect_failing{bridge="cloud",kind="connect-too-large"} 1\n');
    // The first close, before the probe could tell, is not taken for a TLS problem either: the handshake had succeeded.
    expect(warns.filter((w) => w.includes('is it a TLS port'))).toEqual([]);
    expect(warns[0]).toBe(
      `broker 127.0.0.1:${m.tlsPort} closed the connection before CONNACK, after the TLS handshake: it refused our CONNECT without saying why (too large for its maximum packet size, a Will it does not take, or the identity in our client certificate); the next attempt tells whether it is the size`,
    );
  });

  it('connects at once to the same broker when the CONNECT fits its limit (a short client id): the CONNECT goes whole, no probe', async () => {
    const m = await cloud(100);
    const gw = await gatewayTo(m, { protocol: 5, client_id: 'site-17' });
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up', 5000);
    expect(b.lastFailure).toBeUndefined();
    expect(b.counters.connectFailures).toBe(0);
    expect(renderMetrics(gw.gateway, { now: () => Date.now(), eventLoopLagMs: () => 0, rssBytes: () => 0, listenersUp: () => true })).not.toContain('outpost_bridge_connect_failing{');
  });

  it('does not blame the size when the broker read the whole CONNECT before closing (a 3.1.1 cloud refusing the retained Will)', async () => {
    const m = new Mosquitto({ extra: ['retain_available false'] });
    cleanups.push(() => m.dispose());
    await m.start();
    const gw = await gatewayTo(m, { protocol: 4 });
    const b = gw.gateway.bridges[0]!;
    await waitFor(() => b.linkState === 'up', 'the bridge up', 10_000);
    await sleep(100);
    expect(gw.logs().filter((l) => typeof l.msg === 'string' && l.msg.includes('CONNECT, before reading it'))).toEqual([]);
  });
});
