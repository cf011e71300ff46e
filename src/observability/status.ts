/**
 * The facts behind GET /status.json, the status page (GET /) and `outpost status`:
 * clients, serial devices, MQTT-SN sensors, bridges with their backlog and its age, health,
 * and a bounded in-memory history of each bridge's backlog for the chart.
 *
 *   StatusHistory (one sample every status_interval, status_history long) ─┐
 *   gateway views, health ────────────────────────────────────────────────┴▶ collectStatus() ─▶ JSON
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { SerialView } from './component-metrics.js';
import type { BridgeView, Health } from './gateway-metrics.js';

/** Most clients and sensors listed by name (the counts are always complete). */
export const STATUS_LIST_LIMIT = 200;

export interface StatusView {
  readonly broker: {
    readonly metrics: { readonly connectionsCurrent: number };
    clients?(limit: number): readonly { clientId: string; address: string; transport: string; protocol: number }[];
  };
  readonly bridges: readonly BridgeView[];
  readonly serial?: SerialView;
  readonly mqttsn?: { sensorsByState(): Record<string, number>; sensors?(): readonly { clientId: string; state: string; address: string | undefined }[] } | undefined;
}

export interface HistorySample {
  /** Wall clock ms. */
  t: number;
  /** Bridge name → rows waiting in its outbox. */
  rows: Record<string, number>;
}

/** A ring of backlog samples: at most `capacity`, the oldest dropped first. */
export class StatusHistory {
  readonly capacity: number;
  private readonly samples: HistorySample[] = [];
  private timer: TimerHandle | undefined;

  constructor(
    readonly intervalMs: number,
    historyMs: number,
    private readonly clock: Clock,
    private readonly bridges: () => readonly BridgeView[],
  ) {
    this.capacity = Math.max(2, Math.ceil(historyMs / intervalMs));
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.sample();
    this.timer = this.clock.setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  sample(): void {
    const rows: Record<string, number> = {};
    for (const b of this.bridges()) rows[b.name] = b.backlog().rows;
    this.samples.push({ t: this.clock.now(), rows });
    if (this.samples.length > this.capacity) this.samples.splice(0, this.samples.length - this.capacity);
  }

  list(): readonly HistorySample[] {
    return this.samples;
  }
}

export interface StatusDoc {
  version: string;
  now: number;
  uptimeSeconds: number;
  healthy: boolean;
  problems: string[];
  clients: { connected: number; list: { clientId: string; address: string; transport: string; protocol: number }[] };
  devices: { id: string; online: boolean; frames: number; readings: number; published: number; errors: number }[];
  sensors: { byState: Record<string, number>; list: { clientId: string; state: string; address: string | null }[] };
  bridges: { name: string; link: 'up' | 'down'; rows: number; bytes: number; inflight: number; oldestAgeSeconds: number; reconnects: number; sent: number; lastFailure?: { sentence: string; kind: string } }[];
  history: { intervalMs: number; samples: readonly HistorySample[] };
  /** The last config reload, if one ran: when it ended (ms) and, if rejected, why. */
  lastReload?: { at: number; applied: boolean; reason?: string };
}

export function collectStatus(
  gw: StatusView,
  facts: { version: string; now: number; uptimeSeconds: number; health: Health; history: StatusHistory; lastReload?: StatusDoc['lastReload'] | undefined },
): StatusDoc {
  const { now } = facts;
  const sn = gw.mqttsn;
  return {
    version: facts.version,
    now,
    uptimeSeconds: facts.uptimeSeconds,
    healthy: facts.health.healthy,
    problems: facts.health.problems,
    clients: { connected: gw.broker.metrics.connectionsCurrent, list: [...(gw.broker.clients?.(STATUS_LIST_LIMIT) ?? [])] },
    devices: (gw.serial?.devices() ?? []).map((d) => {
      const c = d.counters;
      const errors = (c.decode_failures ?? 0) + (c.checksum_failures ?? 0) + (c.timeouts ?? 0) + (c.publish_failures ?? 0);
      return { id: d.id, online: d.online, frames: c.frames ?? 0, readings: c.readings ?? 0, published: c.published ?? 0, errors };
    }),
    sensors: {
      byState: sn?.sensorsByState() ?? {},
      list: (sn?.sensors?.() ?? []).slice(0, STATUS_LIST_LIMIT).map((s) => ({ clientId: s.clientId, state: s.state, address: s.address ?? null })),
    },
    bridges: gw.bridges.map((b) => {
      const s = b.backlog();
      return {
        name: b.name,
        link: b.linkState,
        rows: s.rows,
        bytes: s.bytes,
        inflight: s.inflight,
        oldestAgeSeconds: s.oldestCreatedAt === undefined ? 0 : Math.max(0, Math.round((now - s.oldestCreatedAt) / 1000)),
        reconnects: b.counters.reconnects,
        sent: b.outbound ?? 0,
        ...(b.linkState === 'down' && b.lastFailure !== undefined ? { lastFailure: { sentence: b.lastFailure.sentence, kind: b.lastFailure.key } } : {}),
      };
    }),
    history: { intervalMs: facts.history.intervalMs, samples: facts.history.list() },
    ...(facts.lastReload !== undefined ? { lastReload: facts.lastReload } : {}),
  };
}
