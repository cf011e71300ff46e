/**
 * Broker counters. Plain numbers on one object: cheap to bump on the hot path,
 * read by the metrics endpoint and $SYS topics of a later issue.
 */
import { Tally } from '../core/tally.js';
import type { SourceKind } from '../core/message.js';

export type DropReason =
  | 'queue-full'
  | 'expired'
  | 'too-large-for-client'
  | 'offline-qos0'
  | 'session-ended'
  | 'unencodable';

export type DenialKind = 'publish' | 'subscribe' | 'delivery' | 'will';
export type LimitReason = 'max-connections' | 'max-connections-per-address' | 'connect-rate';

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
  /** Messages published on the bus, by the kind of source they came from. */
  readonly messagesBySource: Record<SourceKind, number> = { mqtt: 0, mqttsn: 0, serial: 0, bridge: 0, system: 0 };
  /** Clients cut off for protocol violations, by outcome. */
  readonly violations = new Tally<string>();
  readonly drops = new Tally<DropReason>();
  /** CONNECTs refused for a wrong password or an unknown user. */
  authFailures = 0;
  /** What the ACL refused: publish, subscribe, delivery (a message a partly granted subscription matched), will. */
  readonly denials = new Tally<DenialKind>();
  /** Connections closed on arrival by a limit (total, per address, connect rate). */
  readonly limited = new Tally<LimitReason>();
  /** Connections open now and handed over so far, by listener (`mqtts 127.0.0.1:8883`; TLS and WebSocket ones once their handshake is done). */
  readonly listenerConnections = new Tally<string>();
  readonly listenerConnectionsTotal = new Tally<string>();
  /** mqtts and wss clients refused before MQTT: failed handshakes and client certificates, by reason (tls-listener.ts TlsRefusal). */
  readonly tlsRefused = new Tally<string>();
  /** WebSocket upgrades refused with HTTP 403: a browser's Origin not in the listener's allowed_origins. */
  originsRefused = 0;

  /** A connection was handed to the broker; `current` is how many are open now. */
  opened(listener: string | undefined, current: number): void {
    this.connectionsCurrent = current;
    if (listener === undefined) return;
    this.listenerConnections.add(listener);
    this.listenerConnectionsTotal.add(listener);
  }

  closed(listener: string | undefined, current: number): void {
    this.connectionsClosed++;
    this.connectionsCurrent = current;
    if (listener !== undefined && this.listenerConnections.count(listener) > 0) this.listenerConnections.add(listener, -1);
  }

  denial(kind: DenialKind): void {
    this.denials.add(kind);
  }

  violation(outcome: string): void {
    this.violations.add(outcome);
  }

  drop(reason: DropReason, n = 1): void {
    this.drops.add(reason, n);
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
      authFailures: this.authFailures,
      denials: Object.fromEntries(this.denials),
      limited: Object.fromEntries(this.limited),
      originsRefused: this.originsRefused,
      listenerConnections: Object.fromEntries(this.listenerConnections),
      tlsRefused: Object.fromEntries(this.tlsRefused),
    };
  }
}
