import { createServer, type Server } from 'node:net';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerMetrics } from '../../src/broker/metrics.js';
import { isOutpostError } from '../../src/core/errors.js';
import type { OutboxLimits } from '../../src/store/outbox.js';
import { checkHealth, renderMetrics, type BridgeView, type GatewayView, type RuntimeView } from '../../src/observability/gateway-metrics.js';
import { MetricsServer } from '../../src/observability/metrics-server.js';

const NOW = 1_700_000_000_000;
const log = pino({ level: 'silent' });

function bridge(name: string, linkState: 'up' | 'down', rows: number, bytes: number, oldestAgeMs?: number): BridgeView {
  return {
    name,
    linkState,
    counters: { reconnects: 3, connectFailures: 11, inbound: 7 },
    backlog: () => ({ rows, bytes, oldestCreatedAt: oldestAgeMs === undefined ? undefined : NOW - oldestAgeMs, drops: { 'full-oldest': 2 }, inflight: 1 }),
  };
}

function gateway(bridges: BridgeView[]): GatewayView {
  const metrics = new BrokerMetrics();
  metrics.connectionsCurrent = 4;
  metrics.connectionsAccepted = 9;
  metrics.messagesIn = 120;
  metrics.drop('queue-full', 5);
  metrics.violation('malformed-packet');
  return { broker: { metrics }, bridges };
}

const runtime = (listenersUp = true): RuntimeView => ({ now: () => NOW, eventLoopLagMs: () => 12, rssBytes: () => 50_000_000, listenersUp: () => listenersUp });
const caps: OutboxLimits = { maxRows: 1000, maxBytes: 1_000_000, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' };

const servers: MetricsServer[] = [];
const blockers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const b of blockers.splice(0)) await new Promise((r) => b.close(r));
});

async function serve(gw: GatewayView, rt: RuntimeView): Promise<string> {
  const server = new MetricsServer('127.0.0.1', 0, { log, render: () => renderMetrics(gw, rt), health: () => checkHealth(gw, rt, () => caps) });
  servers.push(server);
  await server.start();
  return `http://127.0.0.1:${server.address!.port}`;
}

describe('/metrics', () => {
  it('serves broker, outbox, bridge and process facts that a Prometheus text parser reads back', async () => {
    const base = await serve(gateway([bridge('cloud', 'down', 42, 4200, 90_000)]), runtime());
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = parsePrometheusTextFormat(await res.text());
    const value = (name: string, labels: Record<string, string> = {}) =>
      families.find((f) => f.name === name)?.metrics.find((m) => JSON.stringify(m.labels ?? {}) === JSON.stringify(labels))?.value;
    expect(value('outpost_up')).toBe('1');
    expect(value('outpost_clients_connected')).toBe('4');
    expect(value('outpost_connections_accepted_total')).toBe('9');
    expect(value('outpost_messages_received_total')).toBe('120');
    expect(value('outpost_messages_dropped_total', { reason: 'queue-full' })).toBe('5');
    expect(value('outpost_protocol_violations_total', { outcome: 'malformed-packet' })).toBe('1');
    expect(value('outpost_bridge_up', { bridge: 'cloud' })).toBe('0');
    expect(value('outpost_bridge_reconnects_total', { bridge: 'cloud' })).toBe('3');
    expect(value('outpost_bridge_connect_failures_total', { bridge: 'cloud' })).toBe('11');
    expect(value('outpost_outbox_rows', { bridge: 'cloud' })).toBe('42');
    expect(value('outpost_outbox_bytes', { bridge: 'cloud' })).toBe('4200');
    expect(value('outpost_outbox_oldest_age_seconds', { bridge: 'cloud' })).toBe('90');
    expect(value('outpost_outbox_inflight', { bridge: 'cloud' })).toBe('1');
    expect(value('outpost_outbox_dropped_total', { bridge: 'cloud', reason: 'full-oldest' })).toBe('2');
    expect(value('outpost_event_loop_lag_seconds')).toBe('0.012');
    expect(value('outpost_resident_memory_bytes')).toBe('50000000');
    expect(families.find((f) => f.name === 'outpost_outbox_rows')?.type).toBe('GAUGE');
    expect(families.find((f) => f.name === 'outpost_bridge_reconnects_total')?.type).toBe('COUNTER');
  });

  it('escapes label values so a bridge name with quotes still parses', async () => {
    const base = await serve(gateway([bridge('a"b\\c', 'up', 0, 0)]), runtime());
    const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text());
    expect(families.find((f) => f.name === 'outpost_bridge_up')?.metrics[0]?.labels).toEqual({ bridge: 'a"b\\c' });
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const base = await serve(gateway([]), runtime());
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});

describe('/healthz', () => {
  it('is 200 when listeners are up and each bridge is up or buffering within its caps', async () => {
    const base = await serve(gateway([bridge('cloud', 'up', 5000, 9e9), bridge('backup', 'down', 10, 100, 60_000)]), runtime());
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ healthy: true, problems: [], components: { listeners: 'ok', 'bridge cloud': 'ok', 'bridge backup': 'ok' } });
  });

  it('is 503 naming the bridge whose link is down and whose outbox reached a cap', async () => {
    const base = await serve(gateway([bridge('cloud', 'down', 1000, 500, 7_200_000), bridge('backup', 'up', 0, 0)]), runtime());
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { problems: string[] }).problems).toEqual(['bridge cloud: down and its outbox is at its cap (rows 1000/1000, oldest 7200s/3600s)']);
  });

  it('is 503 while the listeners are not up yet', async () => {
    const base = await serve(gateway([]), runtime(false));
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { problems: string[] }).problems).toEqual(['listeners: not listening yet']);
  });
});

describe('MetricsServer', () => {
  it('fails to start with one sentence naming the port and the fix when the port is in use', async () => {
    const blocker = createServer();
    blockers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const server = new MetricsServer('127.0.0.1', port, { log, render: () => '', health: () => ({ healthy: true, problems: [], components: {} }) });
    const err = await server.start().then(() => undefined, (e: unknown) => e);
    expect(isOutpostError(err, 'METRICS_LISTEN_FAILED')).toBe(true);
    expect((err as Error).message).toBe(`metrics listener 127.0.0.1:${port} is already in use; set metrics.port to a free port or metrics.enabled: false`);
    await server.stop(); // stop without a start is a no-op
  });

  it('closes its port on stop, and stop is idempotent', async () => {
    const base = await serve(gateway([]), runtime());
    await servers[0]!.stop();
    await servers[0]!.stop();
    await expect(fetch(`${base}/metrics`)).rejects.toThrow();
  });
});
