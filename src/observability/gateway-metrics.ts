/**
 * What /metrics and /healthz report, read from the running gateway through small
 * structural views (the real Gateway satisfies them; tests hand plain objects).
 *
 *   broker.metrics ─┐
 *   bridges[i] ─────┼─▶ renderMetrics() ─▶ Prometheus text
 *   process, loop ──┘    checkHealth()   ─▶ { healthy, problems }
 */
import type { BrokerMetrics } from '../broker/metrics.js';
import type { OutboxLimits, OutboxStats } from '../store/outbox.js';
import type { StuckComponent } from '../core/progress.js';
import { addComponentFamilies, type ComponentsView } from './component-metrics.js';
import { PromText, type Sample } from './prometheus.js';

export interface BridgeView {
  readonly name: string;
  readonly linkState: 'up' | 'down';
  readonly counters: { readonly reconnects: number; readonly inbound: number; readonly connectFailures?: number; readonly denied?: number; readonly unmatched?: number };
  readonly outbound?: number;
  /** Why the last attempt to connect failed (src/bridge/bridge.ts); `key` is its kind when it is a short name. */
  readonly lastFailure?: { readonly sentence: string; readonly key: string } | undefined;
  backlog(): OutboxStats & { inflight: number };
}

/** The kind of a connect failure as a label: the short keys of src/bridge/upstream-failures.ts, every other one `other`. */
function failureKind(key: string): string {
  return /^[a-z0-9-]{1,40}$/.test(key) ? key : 'other';
}

export interface GatewayView extends ComponentsView {
  readonly broker: { readonly metrics: BrokerMetrics };
  readonly bridges: readonly BridgeView[];
  /** 'ok', or why the store acknowledges nothing; undefined without a store. */
  storeHealth?(): string | undefined;
  /** Steps of the wall clock seen while running (core/clock-steps.ts); undefined when not watched. */
  clockSteps?(): { steps: number; lastStepMs: number } | undefined;
  /** notAfter of each certificate in use (observability/certificate-expiry.ts). */
  certificateExpiry?(): readonly Sample[];
}

export interface RuntimeView {
  /** Wall clock, ms. */
  now(): number;
  /** Event-loop lag, ms (mean of the last interval). */
  eventLoopLagMs(): number;
  /** Event-loop lag of the last interval, mean, 99th percentile and maximum, ms (starts a new interval). */
  eventLoopLag?(): { meanMs: number; p99Ms: number; maxMs: number };
  rssBytes(): number;
  /** The JavaScript heap in use and reserved, and memory held outside it by buffers (Node's process.memoryUsage()). */
  heapBytes?(): { used: number; total: number; external: number };
  /** Whether every listener is bound (the gateway finished starting). */
  listenersUp(): boolean;
  /** Bytes written to storage by the process, when the platform tells (Linux). */
  storageWrittenBytes?(): number | undefined;
  /** Components that stopped making progress (core/progress.ts). */
  stuck?(): readonly StuckComponent[];
  /** Config reloads so far (SIGHUP), and whether the last one was applied. */
  reloads?(): { runs: number; rejected: number; last: { applied: boolean } | undefined };
}

/** `mqtts 127.0.0.1:8883` → { type: 'mqtts', address: '127.0.0.1:8883' } (metrics.ts, PeerInfo.listener). */
function listenerLabels(l: string): { type: string; address: string } {
  const space = l.indexOf(' ');
  return { type: l.slice(0, space), address: l.slice(space + 1) };
}

export function renderMetrics(gw: GatewayView, rt: RuntimeView): string {
  return collectMetrics(gw, rt).toString();
}

/** Every family, for /metrics and for the $SYS/outpost/... copies. */
export function collectMetrics(gw: GatewayView, rt: RuntimeView): PromText {
  const m = gw.broker.metrics;
  const lag: { meanMs: number; p99Ms?: number; maxMs?: number } = rt.eventLoopLag?.() ?? { meanMs: rt.eventLoopLagMs() };
  const p = new PromText()
    .one('outpost_up', 'gauge', '1 once every listener is bound.', rt.listenersUp() ? 1 : 0)
    .one('outpost_clients_connected', 'gauge', 'MQTT connections open now.', m.connectionsCurrent)
    .one('outpost_connections_accepted_total', 'counter', 'MQTT connections accepted.', m.connectionsAccepted)
    .one('outpost_connections_refused_total', 'counter', 'MQTT connections refused (CONNACK with an error).', m.connectionsRefused)
    .one('outpost_connections_closed_total', 'counter', 'MQTT connections closed.', m.connectionsClosed)
    .one('outpost_packets_received_total', 'counter', 'MQTT packets received.', m.packetsIn)
    .one('outpost_packets_sent_total', 'counter', 'MQTT packets sent.', m.packetsOut)
    .one('outpost_messages_received_total', 'counter', 'Messages published into the broker from every source (MQTT, MQTT-SN, serial, bridges, the $SYS topics of the gateway itself); by source in outpost_messages_in_total.', m.messagesIn)
    .one('outpost_messages_sent_total', 'counter', 'PUBLISH messages sent to clients.', m.messagesOut)
    .one('outpost_bytes_received_total', 'counter', 'MQTT bytes received.', m.bytesIn)
    .one('outpost_bytes_sent_total', 'counter', 'MQTT bytes sent.', m.bytesOut)
    .family('outpost_messages_dropped_total', 'counter', 'Messages the broker dropped, by reason.',
      [...m.drops].map(([reason, value]) => ({ labels: { reason }, value })))
    .one('outpost_auth_failures_total', 'counter', 'CONNECTs refused for a wrong password or an unknown user.', m.authFailures)
    .family('outpost_acl_denied_total', 'counter', 'What the ACL refused, by kind (publish, subscribe, delivery, will).',
      [...m.denials].map(([kind, value]) => ({ labels: { kind }, value })))
    .family('outpost_connections_limited_total', 'counter', 'Connections closed on arrival by a limit, by reason.',
      [...m.limited].map(([reason, value]) => ({ labels: { reason }, value })))
    .family('outpost_listener_connections', 'gauge', 'Connections open now, by listener (type, configured address); TLS and WebSocket ones once their handshake is done.',
      [...m.listenerConnections].map(([l, value]) => ({ labels: listenerLabels(l), value })))
    .family('outpost_listener_connections_total', 'counter', 'Connections handed to the broker, by listener (type, configured address).',
      [...m.listenerConnectionsTotal].map(([l, value]) => ({ labels: listenerLabels(l), value })))
    .family('outpost_tls_refused_total', 'counter', 'mqtts and wss clients refused before MQTT, by reason: timeout, not-tls, version, no-client-certificate, client-certificate, client-certificate-revoked (listed by the crl), crl (the crl cannot be used: expired, or not of the ca), client-certificate-without-cn, server-certificate (the client refused ours), client-closed, other.',
      [...m.tlsRefused].map(([reason, value]) => ({ labels: { reason }, value })))
    .family('outpost_tls_certificate_expiry_timestamp_seconds', 'gauge', 'When each certificate in use expires (notAfter, Unix time), by use: listener (the server certificate of an mqtts or wss listener, with its type and address), listener-ca, bridge (the client certificate of a bridge), bridge-ca; a ca file counts by its earliest. Updated when the files are read again (reload, file change, bridge reconnect).',
      gw.certificateExpiry?.() ?? [])
    .one('outpost_websocket_origins_refused_total', 'counter', 'WebSocket upgrades refused with HTTP 403: a browser page whose Origin is not in the listener\'s allowed_origins.', m.originsRefused)
    .family('outpost_protocol_violations_total', 'counter', 'Clients cut off for protocol violations, by outcome.',
      [...m.violations].map(([outcome, value]) => ({ labels: { outcome }, value })));
  const backlogs = gw.bridges.map((b) => ({ b, s: b.backlog(), labels: { bridge: b.name } }));
  p.family('outpost_bridge_up', 'gauge', '1 while the bridge is connected to its cloud broker.', backlogs.map(({ b, labels }) => ({ labels, value: b.linkState === 'up' ? 1 : 0 })))
    .family('outpost_bridge_reconnects_total', 'counter', 'Bridge connections to the cloud broker after the first.', backlogs.map(({ b, labels }) => ({ labels, value: b.counters.reconnects })))
    .family('outpost_bridge_connect_failures_total', 'counter', 'Attempts to connect to the cloud broker that failed (TCP, TLS, CONNACK refused, timeout).', backlogs.map(({ b, labels }) => ({ labels, value: b.counters.connectFailures ?? 0 })))
    .family('outpost_bridge_connect_failing', 'gauge', 'While the bridge is down after a failed attempt to connect: 1, with the kind of that failure (connect-too-large: the cloud\'s maximum packet size is below our CONNECT; qos0-311, no-retain-311, no-retain, will-qos0, bridge-flag, tls-files, connect-encode; other: the sentence in the log and /status.json says what).',
      backlogs.filter(({ b }) => b.linkState === 'down' && b.lastFailure !== undefined).map(({ b, labels }) => ({ labels: { ...labels, kind: failureKind(b.lastFailure!.key) }, value: 1 })))
    .family('outpost_bridge_inbound_messages_total', 'counter', 'Messages the bridge brought in from the cloud.', backlogs.map(({ b, labels }) => ({ labels, value: b.counters.inbound })))
    .family('outpost_bridge_inbound_denied_total', 'counter', 'Messages from the cloud the ACL did not let the bridge publish locally.', backlogs.map(({ b, labels }) => ({ labels, value: b.counters.denied ?? 0 })))
    .family('outpost_bridge_inbound_unmatched_total', 'counter', 'Messages from the cloud that no inbound rule takes (dropped).', backlogs.map(({ b, labels }) => ({ labels, value: b.counters.unmatched ?? 0 })))
    .family('outpost_outbox_rows', 'gauge', 'Messages waiting in the outbox for the cloud.', backlogs.map(({ s, labels }) => ({ labels, value: s.rows })))
    .family('outpost_outbox_bytes', 'gauge', 'Payload and topic bytes waiting in the outbox.', backlogs.map(({ s, labels }) => ({ labels, value: s.bytes })))
    .family('outpost_outbox_oldest_age_seconds', 'gauge', 'Age of the oldest waiting message (0 when empty).',
      backlogs.map(({ s, labels }) => ({ labels, value: s.oldestCreatedAt === undefined ? 0 : Math.max(0, (rt.now() - s.oldestCreatedAt) / 1000) })))
    .family('outpost_outbox_inflight', 'gauge', 'Messages sent to the cloud and not yet acknowledged.', backlogs.map(({ s, labels }) => ({ labels, value: s.inflight })))
    .family('outpost_outbox_dropped_total', 'counter', 'Messages that left the outbox undelivered, by reason.',
      backlogs.flatMap(({ s, labels }) => Object.entries(s.drops).map(([reason, value]) => ({ labels: { ...labels, reason }, value: value ?? 0 }))))
    .one('outpost_event_loop_lag_seconds', 'gauge', 'Event-loop delay (mean over the last scrape interval).', lag.meanMs / 1000)
    .one('outpost_resident_memory_bytes', 'gauge', 'Resident set size of the process.', rt.rssBytes());
  const heap = rt.heapBytes?.();
  if (heap !== undefined) {
    p.family('outpost_heap_bytes', 'gauge', 'JavaScript heap in use and reserved, and memory outside it held by buffers (external).', [
      { labels: { kind: 'used' }, value: heap.used },
      { labels: { kind: 'total' }, value: heap.total },
      { labels: { kind: 'external' }, value: heap.external },
    ]);
  }
  if (lag.p99Ms !== undefined) {
    p.one('outpost_event_loop_lag_p99_seconds', 'gauge', 'Event-loop delay, 99th percentile over the last scrape interval.', lag.p99Ms / 1000)
      .one('outpost_event_loop_lag_max_seconds', 'gauge', 'Event-loop delay, maximum over the last scrape interval.', (lag.maxMs ?? 0) / 1000);
  }
  addComponentFamilies(p, gw, rt.storageWrittenBytes?.());
  const steps = gw.clockSteps?.();
  if (steps !== undefined) {
    p.one('outpost_clock_steps_total', 'counter', 'Steps of the wall clock (NTP after a boot without a real-time clock) seen while running; stored ages and expiry deadlines moved with each.', steps.steps)
      .one('outpost_clock_last_step_seconds', 'gauge', 'Size of the last step of the wall clock, signed (0 before the first).', steps.lastStepMs / 1000);
  }
  const reloads = rt.reloads?.();
  if (reloads !== undefined) {
    // `systemctl reload` succeeds whatever the file holds: a rejected one shows here (and in the log).
    p.family('outpost_config_reloads_total', 'counter', 'Config reloads (SIGHUP, systemctl reload) by result: applied, or rejected with the running config kept.', [
      { labels: { result: 'applied' }, value: reloads.runs - reloads.rejected },
      { labels: { result: 'rejected' }, value: reloads.rejected },
    ]).one('outpost_config_last_reload_successful', 'gauge', '0 when the last config reload was rejected (the log says why), 1 after an applied one or before any.', reloads.last?.applied === false ? 0 : 1);
  }
  if (rt.stuck !== undefined) {
    const stuck = rt.stuck();
    p.one('outpost_components_stuck', 'gauge', 'Components with work waiting and no progress for metrics.stuck_after (watchdog pings are withheld while > 0).', stuck.length)
      .family('outpost_component_stuck_seconds', 'gauge', 'How long each stuck component has made no progress.', stuck.map((s) => ({ labels: { component: s.name }, value: s.forMs / 1000 })));
  }
  return p;
}

export interface Health {
  healthy: boolean;
  /** One phrase per unhealthy component, e.g. `bridge cloud: down and its outbox is full (bytes)`. */
  problems: string[];
  components: Record<string, 'ok' | string>;
}

/**
 * Healthy = every listener is bound, the store's commits succeed, no component is stuck, and every bridge is up or, while
 * down, still buffering within its caps (no cap reached: rows, bytes, age). A link that is down but buffering is
 * normal on a flaky uplink and must not restart the service.
 */
export function checkHealth(gw: GatewayView, rt: RuntimeView, limits: (bridge: string) => OutboxLimits | undefined, stuck: readonly StuckComponent[] = []): Health {
  const components: Record<string, string> = {};
  components['listeners'] = rt.listenersUp() ? 'ok' : 'not listening yet';
  const store = gw.storeHealth?.();
  if (store !== undefined) components['store'] = store;
  for (const b of gw.bridges) {
    const s = b.backlog();
    const caps = limits(b.name);
    const reached: string[] = [];
    if (caps !== undefined) {
      if (caps.maxRows > 0 && s.rows >= caps.maxRows) reached.push(`rows ${s.rows}/${caps.maxRows}`);
      if (caps.maxBytes > 0 && s.bytes >= caps.maxBytes) reached.push(`bytes ${s.bytes}/${caps.maxBytes}`);
      const ageMs = s.oldestCreatedAt === undefined ? 0 : rt.now() - s.oldestCreatedAt;
      if (caps.maxAgeMs > 0 && ageMs >= caps.maxAgeMs) reached.push(`oldest ${Math.round(ageMs / 1000)}s/${Math.round(caps.maxAgeMs / 1000)}s`);
    }
    components[`bridge ${b.name}`] = b.linkState === 'up' || reached.length === 0 ? 'ok' : `down and its outbox is at its cap (${reached.join(', ')})`;
  }
  // A component with work waiting and no progress (core/progress.ts): its loop no longer turns.
  for (const s of stuck) components[s.name] = `stuck: work waiting and no progress for ${Math.round(s.forMs / 1000)}s`;
  const problems = Object.entries(components).filter(([, v]) => v !== 'ok').map(([k, v]) => `${k}: ${v}`);
  return { healthy: problems.length === 0, problems, components };
}
