/**
 * Warnings about peers the transports refuse before MQTT starts (failed TLS handshakes,
 * wrong or missing client certificates, plain TCP on a TLS port, WebSockets without the
 * mqtt subprotocol): at most one line per source address per interval, and the next line
 * that gets through says how many were suppressed. A scanner cannot flood the journal.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { LogRateLimiter } from '../observability/rate-limit.js';

export class PeerWarnings {
  private readonly limiter: LogRateLimiter;

  constructor(
    private readonly log: Logger,
    clock: Clock = systemClock,
    windowMs = 10_000,
  ) {
    this.limiter = new LogRateLimiter(clock, windowMs, 1);
  }

  warn(remoteAddress: string | undefined, fields: Record<string, unknown>, msg: string): void {
    const suppressed = this.limiter.take(remoteAddress ?? '?');
    if (suppressed < 0) return;
    this.log.warn({ remoteAddress, ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }
}
