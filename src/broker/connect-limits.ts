/**
 * Connection limits checked when a transport hands the broker a new stream, before any
 * byte is read: total connections, connections per source address, and a connect rate per
 * source address (a token bucket: `connect_burst` at once, then `connect_rate` per second).
 * TLS and WebSocket connections are counted from their TCP accept, before the handshake,
 * until their socket closes: handshakes under way hold a place like open connections.
 * A flood from one address spends that address's tokens only, so others still get in.
 * Memory: one counter per open connection's address, and at most MAX_BUCKETS buckets
 * (full ones are pruned by the broker's sweep).
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { LogRateLimiter } from '../observability/rate-limit.js';
import type { PeerInfo } from './connection.js';
import type { BrokerMetrics, LimitReason } from './metrics.js';

export interface ConnectLimitOptions {
  /** 0 = unlimited. */
  maxConnections: number;
  /** 0 = unlimited. */
  maxConnectionsPerAddress: number;
  /** New connections per second per source address; 0 = unlimited. */
  connectRate: number;
  /** Connections a source address may open at once before the rate applies. */
  connectBurst: number;
}

const MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export interface ConnectLimitDeps {
  clock: Clock;
  /** Refusals are counted and logged (rate-limited per reason and address); optional in unit tests. */
  log?: Logger;
  metrics?: BrokerMetrics;
  limiter?: LogRateLimiter;
}

export class ConnectLimits {
  private readonly open = new Map<string, number>();
  /** Connections counted in (the sum of `open`). */
  private total = 0;
  private readonly buckets = new Map<string, Bucket>();
  private readonly clock: Clock;

  constructor(
    private readonly o: ConnectLimitOptions,
    private readonly deps: ConnectLimitDeps,
  ) {
    this.clock = deps.clock;
  }

  /** True when the connection may proceed (it is counted in); false when refused (counted, logged). */
  admit(peer: PeerInfo): boolean {
    // Counted in at its TCP accept already (admitHandshake), until that socket closes.
    if (peer.countedAtAccept === true) return true;
    const reason = this.check(peer.remoteAddress);
    if (reason === undefined) return true;
    this.refused(peer, reason);
    return false;
  }

  /**
   * For TLS and WebSocket listeners to ask when a TCP connection arrives, before the
   * handshake (the costly part of a flood): the connection is counted in here, the rate
   * charged, and it holds its place until its socket closes (`release`), the handshake
   * and the MQTT connection after it included; the stream handed over later is not counted
   * again. So handshakes that stall count against the limits like open connections.
   */
  admitHandshake(peer: Pick<PeerInfo, 'transport' | 'remoteAddress' | 'remotePort'>): boolean {
    const reason = this.check(peer.remoteAddress);
    if (reason === undefined) return true;
    this.refused(peer, reason);
    return false;
  }

  private refused(peer: Pick<PeerInfo, 'transport' | 'remoteAddress' | 'remotePort'>, reason: LimitReason): void {
    const { metrics, limiter, log } = this.deps;
    if (metrics !== undefined) {
      metrics.connectionsRefused++;
      metrics.limited.add(reason);
    }
    const suppressed = limiter?.take(`limit:${reason}:${peer.remoteAddress}`) ?? 0;
    if (suppressed >= 0) log?.warn({ peer: `${peer.remoteAddress}:${peer.remotePort}`, transport: peer.transport, reason, ...(suppressed > 0 ? { suppressed } : {}) }, 'connection refused by a limit');
  }

  /** Counts the connection in, or says which limit refuses it. */
  check(address: string): LimitReason | undefined {
    const o = this.o;
    if (o.maxConnections > 0 && this.total >= o.maxConnections) return 'max-connections';
    const n = this.open.get(address) ?? 0;
    if (o.maxConnectionsPerAddress > 0 && n >= o.maxConnectionsPerAddress) return 'max-connections-per-address';
    if (o.connectRate > 0 && !this.take(address)) return 'connect-rate';
    this.open.set(address, n + 1);
    this.total++;
    return undefined;
  }

  /** A connection counted in by `admit` or `admitHandshake` closed. */
  release(address: string): void {
    const n = this.open.get(address);
    if (n === undefined) return;
    this.total--;
    if (n <= 1) this.open.delete(address);
    else this.open.set(address, n - 1);
  }

  /** Forgets buckets that have refilled (they would admit a full burst anyway). */
  prune(): void {
    if (this.buckets.size === 0) return;
    const now = this.clock.now();
    for (const [address, b] of this.buckets) if (this.level(b, now) >= this.o.connectBurst) this.buckets.delete(address);
  }

  private level(b: Bucket, now: number): number {
    // No time runs backwards: a step of the wall clock back a day must not refuse an address for a day.
    return Math.min(this.o.connectBurst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.o.connectRate);
  }

  private take(address: string): boolean {
    const now = this.clock.now();
    let b = this.buckets.get(address);
    if (b === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.prune();
      // Still full: more addresses are connecting than we keep buckets for. Admitting
      // untracked is better than refusing everyone; the other limits still hold.
      if (this.buckets.size >= MAX_BUCKETS) return true;
      b = { tokens: this.o.connectBurst, at: now };
      this.buckets.set(address, b);
    } else {
      b.tokens = this.level(b, now);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
