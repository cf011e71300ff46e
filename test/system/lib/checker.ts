/**
 * What the cloud got, per stamped source: lost (acknowledged by outpost, never at the cloud),
 * duplicated (a number arriving more than once) and out of order (a first arrival lower than
 * an earlier first arrival of the same source). Summed per kind of source for the report.
 */
import type { CloudMessage } from '../../helpers/cloud-observer.js';
import type { StampedSource } from './sources.js';

export interface SourceCheck {
  name: string;
  sent: number;
  acked: number;
  /** Distinct numbers that reached the cloud. */
  arrived: number;
  /** Acknowledged numbers that never reached the cloud (the first 10). */
  lost: number[];
  lostCount: number;
  duplicates: number;
  /** Redeliveries by the cloud broker itself to the observer (DUP set), not the bridge's doing. */
  cloudRedeliveries: number;
  orderViolations: number;
}

/** The number a message carries: the payload itself, or the `value` of a JSON reading. */
export function stampOf(payload: Buffer): number | undefined {
  const text = payload.toString();
  const n = text.startsWith('{') ? (JSON.parse(text) as { value?: unknown }).value : Number(text);
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

export function checkSource(src: StampedSource, arrivals: readonly CloudMessage[]): SourceCheck {
  const seen = new Set<number>();
  let duplicates = 0;
  let cloudRedeliveries = 0;
  let orderViolations = 0;
  let highest = -Infinity;
  for (const m of arrivals) {
    const n = stampOf(m.payload);
    if (n === undefined) continue;
    if (seen.has(n)) {
      if (m.dup) cloudRedeliveries++;
      else duplicates++;
      continue;
    }
    seen.add(n);
    if (n < highest) orderViolations++;
    highest = Math.max(highest, n);
  }
  const lost = [...src.acked].filter((n) => !seen.has(n)).sort((a, b) => a - b);
  return {
    name: src.name,
    sent: src.sent,
    acked: src.acked.size,
    arrived: seen.size,
    lost: lost.slice(0, 10),
    lostCount: lost.length,
    duplicates,
    cloudRedeliveries,
    orderViolations,
  };
}

/** Checks every source against the cloud messages on `remotePrefix + source.topic`. */
export function checkAll(sources: readonly StampedSource[], cloud: readonly CloudMessage[], remotePrefix: string): SourceCheck[] {
  const byTopic = new Map<string, CloudMessage[]>();
  for (const m of cloud) {
    let list = byTopic.get(m.topic);
    if (!list) byTopic.set(m.topic, (list = []));
    list.push(m);
  }
  return sources.map((s) => checkSource(s, byTopic.get(remotePrefix + s.topic) ?? []));
}

export interface KindTotals {
  kind: string;
  sources: number;
  sent: number;
  acked: number;
  arrived: number;
  lost: number;
  duplicates: number;
  cloudRedeliveries: number;
  orderViolations: number;
}

/** Sums per kind, the kind being the part of the name before the first '-'. */
export function totalsByKind(checks: readonly SourceCheck[]): KindTotals[] {
  const out = new Map<string, KindTotals>();
  for (const c of checks) {
    const kind = c.name.split('-')[0]!;
    let t = out.get(kind);
    if (!t) out.set(kind, (t = { kind, sources: 0, sent: 0, acked: 0, arrived: 0, lost: 0, duplicates: 0, cloudRedeliveries: 0, orderViolations: 0 }));
    t.sources++;
    t.sent += c.sent;
    t.acked += c.acked;
    t.arrived += c.arrived;
    t.lost += c.lostCount;
    t.duplicates += c.duplicates;
    t.cloudRedeliveries += c.cloudRedeliveries;
    t.orderViolations += c.orderViolations;
  }
  return [...out.values()];
}

export function totalsTable(rows: readonly KindTotals[]): string {
  const head = '| source | count | sent | acked by outpost | distinct received | lost | duplicates (sent twice) | redelivered (DUP) | out of order |';
  const lines = rows.map(
    (r) => `| ${r.kind} | ${r.sources} | ${r.sent} | ${r.acked} | ${r.arrived} | ${r.lost} | ${r.duplicates} | ${r.cloudRedeliveries} | ${r.orderViolations} |`,
  );
  return [head, '|---|---|---|---|---|---|---|---|---|', ...lines].join('\n');
}
