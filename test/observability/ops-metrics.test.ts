/**
 * The operator's view of a running gateway with every kind of source: an MQTT publisher
 * (MQTT.js), a serial device (in-memory port), an MQTT-SN sensor (real UDP) and a bridge
 * whose cloud is unreachable (so its backlog grows). /metrics is parsed with a real parser;
 * the same counters arrive as retained $SYS/outpost/... messages at a real subscriber;
 * /status.json and `outpost status` show the same facts.
 */
import mqtt from 'mqtt';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayView } from '../../src/observability/gateway-metrics.js';
import type { StatusView, StatusDoc } from '../../src/observability/status.js';
import { statusCommand } from '../../src/observability/status-command.js';
import type { Gateway } from '../../src/gateway.js';
import { freePort } from '../helpers/gateway-fixture.js';
import { MemoryPorts } from '../helpers/memory-ports.js';
import { SnTestClient } from '../helpers/mqttsn-client.js';
import { busyGateway as startBusyGateway, eventually, type OpsRun } from '../helpers/ops-run.js';

// The real Gateway is what /metrics and /status.json read (compile-time check of the views).
const asViews = (g: Gateway): GatewayView & StatusView => g;

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Families = ReturnType<typeof parsePrometheusTextFormat>;
function value(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((s) => Object.entries(labels).every(([k, v]) => (s as { labels?: Record<string, string> }).labels?.[k] === v));
  return m === undefined ? undefined : Number((m as { value: string }).value);
}

/** The shared busy gateway with its traffic: 5 bridged publishes and 2 serial readings. */
async function busyGateway(): Promise<{ run: OpsRun; ports: MemoryPorts; sn: SnTestClient }> {
  const { run, ports, sn, client } = await startBusyGateway('{ host: 127.0.0.1, port: 0, sys_interval: 200ms, status_interval: 200ms }', cleanups);
  asViews(run.gateway);
  for (let i = 0; i < 5; i++) await client.publishAsync('sensors/room/temp', String(20 + i), { qos: 1 });
  ports.device('/dev/ttyBOILER').write('{"temp": 61.5}\n{"temp": 61.7}\n');
  await eventually(() => (run.gateway.serial.devices()[0]?.counters.frames ?? 0) === 2, 'two serial frames');
  return { run, ports, sn };
}

describe('metrics, $SYS copies and status of a busy gateway', () => {
  it('exposes messages per source, serial devices, MQTT-SN sensors by state and the SQLite files in Prometheus text', async () => {
    const { run } = await busyGateway();
    const text = await (await fetch(`${run.http}/metrics`)).text();
    const f = parsePrometheusTextFormat(text);
    expect(value(f, 'outpost_messages_in_total', { source: 'mqtt' })).toBe(5);
    // two readings, plus the device's own retained state and counters topics
    expect(value(f, 'outpost_messages_in_total', { source: 'serial' })).toBeGreaterThanOrEqual(2);
    expect(value(f, 'outpost_messages_in_total', { source: 'mqttsn' })).toBe(0);
    expect(value(f, 'outpost_messages_in_total', { source: 'bridge-inbound' })).toBe(0);
    expect(value(f, 'outpost_messages_out_total', { destination: 'bridge:cloud' })).toBe(0);
    expect(value(f, 'outpost_serial_device_online', { device: 'boiler' })).toBe(1);
    expect(value(f, 'outpost_serial_frames_total', { device: 'boiler' })).toBe(2);
    expect(value(f, 'outpost_serial_readings_total', { device: 'boiler' })).toBe(2);
    expect(value(f, 'outpost_mqttsn_sensors', { state: 'active' })).toBe(1);
    expect(value(f, 'outpost_mqttsn_sensors', { state: 'asleep' })).toBe(0);
    expect(value(f, 'outpost_mqttsn_send_errors_total')).toBe(0);
    expect(value(f, 'outpost_outbox_rows', { bridge: 'cloud' })).toBe(7);
    expect(value(f, 'outpost_sqlite_file_bytes', { file: 'db' })).toBeGreaterThan(0);
    expect(value(f, 'outpost_sqlite_file_bytes', { file: 'wal' })).toBeGreaterThan(0);
    // The 7 outbox rows were committed in at least one transaction, and at most one per message and reading.
    expect(value(f, 'outpost_store_commits_total')).toBeGreaterThanOrEqual(1);
    expect(value(f, 'outpost_store_commits_total')).toBeLessThanOrEqual(20);
    expect(value(f, 'outpost_storage_written_bytes_total')).toBeGreaterThanOrEqual(0);
    expect(value(f, 'outpost_event_loop_lag_seconds')).toBeGreaterThanOrEqual(0);
    // The maximum of the interval bounds its 99th percentile and its mean.
    const max = value(f, 'outpost_event_loop_lag_max_seconds')!;
    expect(max).toBeGreaterThanOrEqual(value(f, 'outpost_event_loop_lag_p99_seconds')!);
    expect(max).toBeGreaterThanOrEqual(value(f, 'outpost_event_loop_lag_seconds')!);
    expect(value(f, 'outpost_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(value(f, 'outpost_heap_bytes', { kind: 'used' })).toBeGreaterThan(1e6);
    expect(value(f, 'outpost_heap_bytes', { kind: 'total' })).toBeGreaterThanOrEqual(value(f, 'outpost_heap_bytes', { kind: 'used' })!);
    expect(value(f, 'outpost_heap_bytes', { kind: 'external' })).toBeGreaterThan(0);
  });

  it('publishes the same counters as retained $SYS/outpost/... messages that a late subscriber to $SYS/# receives', async () => {
    const { run } = await busyGateway();
    await new Promise((r) => setTimeout(r, 500)); // at least one round after the traffic
    const seen = new Map<string, string>();
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${run.port}`, { clientId: 'sys-watcher', reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    const retained = new Set<string>();
    sub.on('message', (topic, payload, packet) => {
      seen.set(topic, payload.toString());
      if (packet.retain) retained.add(topic);
    });
    await sub.subscribeAsync('$SYS/#');
    await eventually(() => seen.get('$SYS/outpost/outbox_rows/cloud') === '7', 'the outbox backlog on $SYS');
    expect(retained.has('$SYS/outpost/outbox_rows/cloud')).toBe(true); // published before we subscribed
    expect(seen.get('$SYS/outpost/messages_in_total/mqtt')).toBe('5');
    expect(seen.get('$SYS/outpost/messages_in_total/serial')).toBe(String(run.gateway.broker.metrics.messagesBySource.serial));
    expect(seen.get('$SYS/outpost/serial_device_online/boiler')).toBe('1');
    expect(seen.get('$SYS/outpost/mqttsn_sensors/active')).toBe('1');
    expect(seen.get('$SYS/outpost/bridge_up/cloud')).toBe('0');
    expect(Number(seen.get('$SYS/outpost/clients_connected'))).toBeGreaterThanOrEqual(1);
    // Live: another publish shows up in the next round (as a live copy, retain 0 [MQTT-3.3.1-9]).
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${run.port}`, { clientId: 'late-publisher', reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync());
    await pub.publishAsync('sensors/room/temp', '30', { qos: 1 });
    await eventually(() => seen.get('$SYS/outpost/outbox_rows/cloud') === '8', 'the new backlog on $SYS');
  });

  it('serves /status.json and `outpost status` prints it as a table; a gateway that is not running is one sentence and exit 1', async () => {
    const { run } = await busyGateway();
    const st = (await (await fetch(`${run.http}/status.json`)).json()) as StatusDoc;
    expect(st.clients.connected).toBe(1);
    expect(st.clients.list.map((c) => c.clientId)).toEqual(['dashboard']);
    expect(st.devices).toEqual([{ id: 'boiler', online: true, frames: 2, readings: 2, published: 2, errors: 0 }]);
    expect(st.sensors.list).toMatchObject([{ clientId: 'door-sensor', state: 'active' }]);
    expect(st.bridges).toMatchObject([{ name: 'cloud', link: 'down', rows: 7, inflight: 0 }]);
    expect(st.bridges[0]!.oldestAgeSeconds).toBeGreaterThanOrEqual(0);
    await eventually(async () => ((await (await fetch(`${run.http}/status.json`)).json()) as StatusDoc).history.samples.at(-1)?.rows['cloud'] === 7, 'a history sample of the backlog');

    let out = '';
    expect(await statusCommand(run.http, { stdout: (t) => (out += t), stderr: () => undefined })).toBe(0);
    expect(out).toMatch(/^outpost \S+, up \d+s: healthy\n/);
    expect(out).toContain('clients: 1 connected');
    expect(out).toMatch(/dashboard\s+127\.0\.0\.1:\d+\s+tcp\s+3\.1\.1/);
    expect(out).toMatch(/boiler\s+online\s+2\s+2\s+2\s+0/);
    expect(out).toContain('mqtt-sn sensors: 1 active');
    expect(out).toMatch(/cloud\s+down\s+7\s+\d+\s+\d+s\s+0\s+0\s+0/);

    const closed = `http://127.0.0.1:${await freePort()}`;
    let err = '';
    expect(await statusCommand(closed, { stdout: () => undefined, stderr: (t) => (err += t) })).toBe(1);
    expect(err).toBe(`outpost status: no outpost answers at ${closed} (ECONNREFUSED); is the service running ("systemctl status outpost"), and is --url the metrics listener (metrics.host and metrics.port)?\n`);
  });
});
