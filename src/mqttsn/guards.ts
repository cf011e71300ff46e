/**
 * Admission checks that run before a datagram is decoded or acted on: a token bucket per
 * source (address and port) against floods, and the networks PUBLISH QoS -1 is accepted
 * from (§6.8: such a publish needs no connection, so the source address is all we know).
 */
import { BlockList, isIP } from 'node:net';
import type { Clock } from '../core/clock.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class FloodGuard {
  private buckets = new Map<string, Bucket>();

  constructor(
    private readonly clock: Clock,
    private readonly perSecond: number,
    private readonly burst: number,
    /** Sources tracked at once; the table is reset past this so spoofed floods cannot grow it. */
    private readonly maxSources = 100_000,
  ) {}

  /** True if a datagram from this source may be processed now. */
  admit(source: string): boolean {
    const now = this.clock.now();
    let b = this.buckets.get(source);
    if (b === undefined) {
      if (this.buckets.size >= this.maxSources) this.buckets.clear();
      b = { tokens: this.burst, at: now };
      this.buckets.set(source, b);
    } else {
      // No time runs backwards: a step of the wall clock back a day must not silence a sensor for a day.
      b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) * this.perSecond) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/**
 * The flood bucket a datagram counts against: its source address and port and, behind a
 * forwarder (§5.5: Length, 0xFE, Ctrl, Wireless Node Id, message), also the node, so that one
 * node flooding its forwarder does not silence every other node behind it. (A sender can pick
 * a fresh source port already; a fresh node id gives it nothing more.) Same text as the
 * session's address key for the node (session.ts makePeer).
 */
export function floodKeyOf(buf: Buffer, source: string): string {
  const hl = buf[0]!;
  if (buf.length < 3 || buf[1] !== 0xfe || hl < 3 || hl > buf.length) return source;
  return `${source}|${buf.toString('hex', 3, hl)}`;
}

export class SourceList {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(networks: readonly string[]) {
    for (const n of networks) {
      const [addr, bits] = n.split('/') as [string, string | undefined];
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
    this.empty = networks.length === 0;
  }

  has(address: string): boolean {
    if (this.empty) return false;
    const family = isIP(address);
    if (family === 0) return false;
    // An IPv4 sender on a dual-stack socket shows up as ::ffff:a.b.c.d.
    if (family === 6 && address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4) {
      return this.list.check(address.slice(7), 'ipv4');
    }
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}
