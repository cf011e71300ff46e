/**
 * Device map → messages: renames, scales and converts each reading, drops the ones a deadband
 * or interval holds back, and builds topic and payload from the device's templates.
 *
 *   Reading {metric, value, unit, ts} ─ metrics[metric] ─ (text → number) ─ value × scale + offset ─ type ─ decimals
 *     ─ deadband / min_interval / max_interval ─ topic "sensors/{device}/{metric}" ─ payload json|plain
 */
import type { MetricMapConfig } from '../config/serial-schema.js';
import type { Message, QoS } from '../core/message.js';
import { validateTopicName } from '../core/topic.js';
import type { MetricValue, Reading } from './driver-api.js';

export interface MappingSettings {
  device: string;
  driver: string;
  topic: string;
  payload: 'json' | 'plain';
  qos: QoS;
  retain: boolean;
  onlyMapped: boolean;
  metrics: Readonly<Record<string, MetricMapConfig>>;
}

interface Last {
  value: MetricValue;
  at: number;
}

/** A metric name as one topic level: wildcards and NUL cannot appear in a topic name [MQTT-4.7.3-2]. */
export function topicSafe(name: string): string {
  return name.replace(/[+#\u0000]/g, '_');
}

export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(device|metric|driver)\}/g, (_, k: string) => vars[k] ?? '');
}

/** A string or boolean as a number: "21.5" → 21.5, true → 1; NaN for text that is no number ("", "abc"). */
function toNumber(v: MetricValue): number {
  if (typeof v !== 'string') return Number(v);
  const t = v.trim();
  return t === '' ? NaN : Number(t);
}

/**
 * A scaled value without binary floating-point noise: 217 × 0.1 is 21.700000000000003 in a
 * double; 15 significant digits (all a double holds reliably) give 21.7.
 */
function cleanProduct(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(15)) : v;
}

function convert(value: MetricValue, m: MetricMapConfig | undefined): MetricValue {
  let v = value;
  // A number sent as text ("216") is converted before scale and offset apply to it.
  if ((m?.type === 'number' || m?.type === 'int') && typeof v !== 'number') v = toNumber(v);
  if (m !== undefined && typeof v === 'number' && (m.scale !== 1 || m.offset !== 0)) v = cleanProduct(v * m.scale + m.offset);
  if (typeof v === 'number' && m?.decimals !== undefined) {
    const f = 10 ** m.decimals;
    v = Math.round(v * f) / f;
  }
  switch (m?.type) {
    case 'number':
      break;
    case 'int':
      v = Math.round(v as number);
      break;
    case 'bool':
      v = typeof v === 'boolean' ? v : typeof v === 'number' ? v !== 0 : ['true', 'on', '1'].includes(v.trim().toLowerCase());
      break;
    case 'string':
      v = String(v);
      break;
  }
  return v;
}

export class DeviceMapper {
  private readonly last = new Map<string, Last>();
  /** Readings held back by a deadband or interval. */
  skipped = 0;

  /**
   * Readings dropped because their value is not a number after a number conversion, or because
   * their name gives no valid topic name.
   */
  invalid = 0;

  /** Metrics whose last published value is kept for a deadband or interval. */
  get remembered(): number {
    return this.last.size;
  }

  /** `onInvalid`: told of each such reading (`detail` says why), so the device counts and logs it. */
  constructor(
    private readonly s: MappingSettings,
    private readonly onInvalid?: (metric: string, detail: string) => void,
  ) {}

  /** The messages to publish for these readings (possibly none). */
  map(readings: readonly Reading[], now: number): Message[] {
    const out: Message[] = [];
    for (const r of readings) {
      // Own keys only: a metric called "constructor" or "toString" is no entry of the map.
      const m = Object.hasOwn(this.s.metrics, r.metric) ? this.s.metrics[r.metric] : undefined;
      if (m?.ignore || (m === undefined && this.s.onlyMapped)) continue;
      const value = convert(r.value, m);
      if (typeof value === 'number' && !Number.isFinite(value)) {
        // NaN from a "number" conversion of text that is no number: dropped, but counted.
        this.invalid++;
        // NaN and Infinity as such: JSON.stringify would call them null (a float32 register's NaN).
        this.onInvalid?.(r.metric, `${typeof r.value === 'string' ? JSON.stringify(r.value) : String(r.value)} is not a number`);
        continue;
      }
      const name = m?.name ?? r.metric;
      if (this.holdBack(name, value, m, now)) {
        this.skipped++;
        continue;
      }
      const topic = renderTemplate(this.s.topic, { device: this.s.device, metric: topicSafe(name), driver: this.s.driver });
      // After the hold-back: a name held back was published before, so its topic was checked.
      // The name comes from the device (a JSON key): "" under a "{metric}" template, a lone
      // surrogate escaped in JSON or a 65 kB key would make a PUBLISH that subscribers reject
      // and drop the connection for [MQTT-4.7.3-1], [MQTT-1.5.4-1]. Dropped and counted instead.
      const check = validateTopicName(topic);
      if (!check.ok) {
        this.invalid++;
        this.onInvalid?.(r.metric, `gives no valid topic (${check.reason})`);
        continue;
      }
      // Only what a deadband or interval compares with is kept: entries of the device map, so
      // memory is bounded by the config, not by the names a device sends (a BLE scanner's
      // addresses as JSON keys were 100 MB per million, kept for ever).
      if (m !== undefined && (m.min_interval !== undefined || m.deadband !== undefined)) this.last.set(name, { value, at: now });
      const unit = m?.unit ?? r.unit;
      const payload =
        this.s.payload === 'plain'
          ? Buffer.from(String(value))
          : Buffer.from(JSON.stringify(unit === undefined ? { value, ts: r.ts ?? now } : { value, unit, ts: r.ts ?? now }));
      out.push({
        topic,
        payload,
        qos: this.s.qos,
        retain: this.s.retain,
        origin: { kind: 'serial', id: this.s.device },
      });
    }
    return out;
  }

  private holdBack(name: string, value: MetricValue, m: MetricMapConfig | undefined, now: number): boolean {
    const prev = this.last.get(name);
    if (prev === undefined || m === undefined) return false;
    const age = now - prev.at;
    if (m.min_interval !== undefined && age < m.min_interval) return true;
    if (m.deadband === undefined) return false;
    const unchanged =
      typeof value === 'number' && typeof prev.value === 'number' && m.deadband > 0
        ? Math.abs(value - prev.value) < m.deadband
        : value === prev.value;
    if (!unchanged) return false;
    return !(m.max_interval !== undefined && age >= m.max_interval);
  }
}
