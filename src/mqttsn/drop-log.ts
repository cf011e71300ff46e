/**
 * Every drop is counted; its log line is rate-limited per reason (and per client for
 * messages), so a garbage flood or a dead sensor cannot flood the journal.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { LogRateLimiter } from '../observability/rate-limit.js';
import type { MqttsnMetrics, SnDropReason } from './metrics.js';

/** Garbage and floods say something about the network (warn); protocol slips are routine (debug). */
const WIRE_FAULTS = new Set<SnDropReason>(['truncated', 'bad-length', 'unknown-type', 'malformed', 'nested-encapsulation', 'oversized', 'flood']);

export class DropLog {
  private readonly limiter: LogRateLimiter;

  constructor(
    private readonly metrics: MqttsnMetrics,
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.limiter = new LogRateLimiter(clock);
  }

  /** A datagram or request refused. */
  datagram(reason: SnDropReason, where: { address: string; port: number } | undefined, detail: string): void {
    this.metrics.drop(reason);
    const suppressed = this.limiter.take(reason);
    if (suppressed < 0) return;
    const fields = { reason, ...(where ? { address: where.address, port: where.port } : {}), ...(suppressed > 0 ? { suppressed } : {}) };
    this.log[WIRE_FAULTS.has(reason) ? 'warn' : 'debug'](fields, detail);
  }

  /** A message that was to go to a client. */
  message(clientId: string, reason: SnDropReason, topic: string): void {
    this.metrics.drop(reason);
    const suppressed = this.limiter.take(`${reason}:${clientId}`);
    if (suppressed < 0) return;
    const level = reason === 'offline-qos0' ? 'debug' : 'warn';
    this.log[level]({ clientId, reason, topic, ...(suppressed > 0 ? { suppressed } : {}) }, 'message for mqtt-sn client dropped');
  }
}
