// Aggregation (median across rounds) and markdown rendering.
import type { BrokerName } from './brokers.js';
import type { DeliveryCounts } from './stamp.js';
import type { Scenario, ScenarioResult } from './scenarios/common.js';

export interface Record {
  round: number;
  scenario: Scenario;
  broker: BrokerName;
  result: ScenarioResult | null;
  error: string | null;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function ldo(list: DeliveryCounts[]): string {
  if (list.length === 0) return '–';
  const s = list.reduce((a, c) => ({ lost: a.lost + c.lost, dup: a.dup + c.dup, ooo: a.ooo + c.ooo }), {
    lost: 0,
    dup: 0,
    ooo: 0,
  });
  return `${s.lost}/${s.dup}/${s.ooo}`;
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** Main table: median per broker, ratio to mosquitto, lost/dup/ooo summed over rounds. */
export function summaryTable(
  records: Record[],
  scenarios: Scenario[],
  brokers: BrokerName[],
  unavailable: Map<BrokerName, string>,
): string {
  const others = brokers.filter((b) => b !== 'mosquitto');
  const ratioCols = brokers.includes('mosquitto') ? others.map((b) => `${b}/mosquitto`) : [];
  const lines = [
    row(['scenario', 'metric', ...brokers, ...ratioCols, ...brokers.map((b) => `${b} lost/dup/ooo`)]),
    row(Array(2 + brokers.length + ratioCols.length + brokers.length).fill('---')),
  ];
  for (const sc of scenarios) {
    const recs = records.filter((r) => r.scenario.id === sc.id);
    const keys: string[] = [];
    for (const r of recs) for (const m of r.result?.metrics ?? []) if (!keys.includes(m.key)) keys.push(m.key);
    if (keys.length === 0) keys.push('—');
    keys.forEach((key, ki) => {
      const med = new Map<BrokerName, number>();
      const cell = (b: BrokerName): string => {
        if (unavailable.has(b)) return 'unavailable';
        const rs = recs.filter((r) => r.broker === b);
        const vals = rs.flatMap((r) => r.result?.metrics.filter((m) => m.key === key).map((m) => m.value) ?? []);
        const v = median(vals);
        med.set(b, v);
        const errs = rs.filter((r) => r.error).length;
        if (!Number.isFinite(v)) return errs ? 'error' : 'n/a';
        return errs ? `${fmt(v)} (${errs} err)` : fmt(v);
      };
      const values = brokers.map(cell);
      const base = med.get('mosquitto') ?? NaN;
      const ratios = ratioCols.length
        ? others.map((b) => {
            const v = med.get(b) ?? NaN;
            return Number.isFinite(v) && Number.isFinite(base) && base !== 0 ? `${(v / base).toFixed(2)}×` : 'n/a';
          })
        : [];
      const counts = brokers.map((b) =>
        ki > 0 || unavailable.has(b)
          ? ''
          : ldo(recs.filter((r) => r.broker === b && r.result?.counts).map((r) => r.result!.counts!)),
      );
      lines.push(row([ki === 0 ? sc.id : '', key, ...values, ...ratios, ...counts]));
    });
  }
  return lines.join('\n');
}

/** Every measurement, with CPU use, so a load-generator bottleneck is visible. */
export function detailTable(records: Record[]): string {
  const lines = [
    row(['round', 'scenario', 'broker', 'result', 'lost/dup/ooo', 'broker CPU %', 'loadgen CPU %', 'notes']),
    row(Array(8).fill('---')),
  ];
  for (const r of records) {
    const res = r.result;
    const metrics = res ? res.metrics.map((m) => `${fmt(m.value)} ${m.key}`).join(', ') : 'error';
    const c = res?.counts;
    const notes = [...(res?.notes ?? []), ...(r.error ? [r.error] : [])].join('; ').replaceAll('|', '\\|');
    lines.push(
      row([
        String(r.round),
        r.scenario.id,
        r.broker,
        metrics,
        c ? `${c.lost}/${c.dup}/${c.ooo}` : '–',
        res?.brokerCpuPct != null ? res.brokerCpuPct.toFixed(0) : 'n/a',
        res?.loadgenCpuPct != null ? res.loadgenCpuPct.toFixed(0) : 'n/a',
        notes,
      ]),
    );
  }
  return lines.join('\n');
}

/** One console line per measurement. */
export function progressLine(r: Record): string {
  const head = `[round ${r.round}] ${r.scenario.id.padEnd(11)} ${r.broker.padEnd(9)}`;
  if (!r.result) return `${head} ERROR ${r.error}`;
  const m = r.result.metrics.map((x) => `${fmt(x.value)} ${x.key}`).join(', ');
  const c = r.result.counts;
  const counts = c ? ` lost/dup/ooo ${c.lost}/${c.dup}/${c.ooo}` : '';
  const cpu = ` cpu broker ${r.result.brokerCpuPct?.toFixed(0) ?? '?'}% loadgen ${r.result.loadgenCpuPct?.toFixed(0) ?? '?'}%`;
  const notes = r.result.notes.length ? ` (${r.result.notes.join('; ')})` : '';
  return `${head} ${m}${counts}${cpu}${notes}`;
}
