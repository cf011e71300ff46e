/**
 * Gateway advertisement and discovery (MQTT-SN v1.2 §6.1): ADVERTISE every T_ADV, and
 * GWINFO in answer to SEARCHGW. On IP the Radius (a hop count, §5.4.2) becomes the
 * multicast TTL of the broadcast answer; behind a forwarder it goes into the Ctrl
 * octet of the encapsulation (§5.5), whose bits 1-0 carry it gateway → forwarder.
 */
import type { Clock } from '../../core/clock.js';
import type { SnContext } from '../context.js';
import { encode } from '../encode.js';
import { MsgType, type SearchGw } from '../packets.js';
import type { Peer } from '../session.js';
import type { DatagramTransport } from '../transport.js';

/**
 * Paces broadcast GWINFO answers per broadcast domain (the IP broadcast address, or the radio
 * network of one forwarder). One broadcast reaches every client within its radius, so another
 * within `gapMs` of one at least as wide tells nobody anything new, while a sensor stuck
 * searching (or anyone sending SEARCHGW) would wake every sensor in reach each time. The
 * searcher itself is always answered.
 */
export class GwinfoPacer {
  private readonly last = new Map<string, { at: number; radius: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly gapMs = 1000,
    /** Domains tracked at once (one per forwarder); the table is reset past this. */
    private readonly maxDomains = 10_000,
  ) {}

  /** True if a GWINFO may be broadcast in this domain with this radius now. */
  admit(domain: string, radius: number): boolean {
    const now = this.clock.now();
    const prev = this.last.get(domain);
    if (prev !== undefined && now - prev.at < this.gapMs && prev.radius >= radius) return false;
    if (this.last.size >= this.maxDomains) this.last.clear();
    this.last.set(domain, { at: now, radius });
    return true;
  }
}

export function onSearchGw(ctx: SnContext, transport: DatagramTransport, peer: Peer, p: SearchGw): void {
  const gwinfo = { type: MsgType.GWINFO, gwId: ctx.config.gateway_id, gwAdd: Buffer.alloc(0) } as const;
  if (peer.encapsulation !== undefined) {
    // Ctrl has two bits for the radius: a wider search gets the widest one (3), not its
    // low bits (a radius of 4 would become 0, "no broadcast"). Radius 0: to the node only.
    const radius = Math.min(p.radius, 3);
    const ctrl = radius > 0 && ctx.gwinfoPacer.admit(`${peer.address}|${peer.port}`, radius) ? radius : 0;
    return ctx.sendTo({ ...peer, encapsulation: { ...peer.encapsulation, ctrl } }, gwinfo);
  }
  // The searcher always hears the answer (it may be behind NAT, out of broadcast reach)…
  ctx.sendTo(peer, gwinfo);
  // …and every client within the radius learns of the gateway too (§6.1).
  if (p.radius > 0 && ctx.gwinfoPacer.admit('ip', p.radius)) {
    ctx.metrics.datagramsOut++;
    transport.broadcast(encode(gwinfo), p.radius);
  }
}

export function advertise(ctx: SnContext, transport: DatagramTransport): void {
  // Duration: seconds until the next ADVERTISE (§5.4.1), rounded up: clients count missed
  // ADVERTISEs against it, so it must not promise the next one sooner than it comes (400ms was 0).
  const duration = Math.min(0xffff, Math.ceil(ctx.config.advertise.interval / 1000));
  ctx.metrics.datagramsOut++;
  transport.broadcast(encode({ type: MsgType.ADVERTISE, gwId: ctx.config.gateway_id, duration }), 1);
}
