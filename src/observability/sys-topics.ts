/**
 * The metrics as retained messages on the local broker, for clients that speak MQTT and not
 * HTTP: every sys_interval, each sample of /metrics is published to
 *
 *   $SYS/outpost/<family without "outpost_">[/<label value>…]   payload: the number as text
 *
 * e.g. $SYS/outpost/clients_connected "3", $SYS/outpost/messages_in_total/serial "1200",
 * $SYS/outpost/outbox_rows/cloud "17". Only values that changed since the last round are
 * published again (the retained copy keeps the rest current for new subscribers); one whose
 * sample is gone is cleared. Topics starting with $ are not matched by "#" or "+" at the
 * first level [MQTT-4.7.2-1], so only subscribers that ask for $SYS/... see them.
 */
import type { Bus } from '../core/bus.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Family } from './prometheus.js';

export const SYS_PREFIX = '$SYS/outpost/';

/** A label value as one topic level: no separators or wildcards. */
const level = (v: string) => (v === '' ? '_' : v.replace(/[/+#\u0000]/g, '_'));

/** Topic → payload of every sample. */
export function sysTopics(families: readonly Family[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of families) {
    const base = SYS_PREFIX + f.name.replace(/^outpost_/, '');
    for (const s of f.samples) {
      const labels = Object.values(s.labels ?? {}).map(level);
      out.set(labels.length === 0 ? base : `${base}/${labels.join('/')}`, String(s.value));
    }
  }
  return out;
}

export interface SysPublisherDeps {
  bus: Pick<Bus, 'publish'>;
  clock: Clock;
  /** The families to publish (collected at each round). */
  collect(): readonly Family[];
}

export class SysPublisher {
  readonly name = 'sys topics';
  private timer: TimerHandle | undefined;
  private readonly last = new Map<string, string>();

  constructor(
    private readonly intervalMs: number,
    private readonly deps: SysPublisherDeps,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer !== undefined) return;
    this.publish();
    this.timer = this.deps.clock.setInterval(() => this.publish(), this.intervalMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /**
   * One round: every sample whose value changed (all of them the first time). A sample that is
   * gone (a bridge or serial device removed by a reload, a component no longer stuck) has its
   * retained copy cleared, so a subscriber does not read its last value as the current one.
   */
  publish(): void {
    const now = sysTopics(this.deps.collect());
    for (const [topic, value] of now) {
      if (this.last.get(topic) === value) continue;
      this.last.set(topic, value);
      this.send(topic, value);
    }
    for (const topic of [...this.last.keys()]) {
      if (now.has(topic)) continue;
      this.last.delete(topic);
      this.send(topic, ''); // an empty retained message deletes the retained one [MQTT-3.3.1-10]
    }
  }

  private send(topic: string, value: string): void {
    void this.deps.bus.publish({ topic, payload: Buffer.from(value), qos: 0, retain: true, origin: { kind: 'system', id: 'outpost' } });
  }
}
