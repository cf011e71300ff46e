/**
 * Broker counters. Plain numbers on one object: cheap to bump on the hot path,
 * read by the metrics endpoint and $SYS topics of a later issue.
 */
export type DropReason =
  | 'queue-full'
  | 'expired'
  | 'too-large-for-client'
  | 'offline-qos0'
  | 'session-ended'
  | 'unencodable';

export class BrokerMetrics {
  connectionsAccepted = 0;
  connectionsRefused = 0;
  connectionsClosed = 0;
  connectionsCurrent = 0;
  packetsIn = 0;
  packetsOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Clients cut off for protocol violations, by outcome. */
  readonly violations = new Map<string, number>();
  readonly drops = new Map<DropReason, number>();

  violation(outcome: string): void {
    this.violations.set(outcome, (this.violations.get(outcome) ?? 0) + 1);
  }

  drop(reason: DropReason, n = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
  }

  snapshot(): Record<string, unknown> {
    return {
      connectionsAccepted: this.connectionsAccepted,
      connectionsRefused: this.connectionsRefused,
      connectionsClosed: this.connectionsClosed,
      connectionsCurrent: this.connectionsCurrent,
      packetsIn: this.packetsIn,
      packetsOut: this.packetsOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      violations: Object.fromEntries(this.violations),
      drops: Object.fromEntries(this.drops),
    };
  }
}
