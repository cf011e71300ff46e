/**
 * Packet id state on the upstream connection: whose id is whose, and where each QoS 2
 * exchange stands in both directions.
 *
 * The forwarder picks the ids of its publishes;
 * the client needs a few of its own (SUBSCRIBE, state publishes). Two packets in flight
 * must never share an id [MQTT-2.2.1-3], and an ack must reach whoever sent the packet.
 * The two id ranges are disjoint: the caller uses 1..CALLER_MAX_PACKET_ID, the client
 * the 256 ids above it.
 */
import { CALLER_MAX_PACKET_ID } from './upstream.js';

export class PacketIds {
  /** 1 = the caller has a QoS > 0 publish with this id in flight. */
  private readonly callerInFlight = new Uint8Array(65_536);
  /** How many ids callerInFlight marks. */
  private callerCount = 0;
  private lastCaller = 0;
  private readonly own = new Set<number>();
  /** Our QoS 2 publishes whose PUBREC arrived: a resend must go out as PUBREL [MQTT-4.3.3]. */
  private readonly pubrecReceived = new Set<number>();
  /** Inbound QoS 2 ids between our PUBREC and the broker's PUBREL (method B de-dup). */
  private readonly inboundQos2 = new Set<number>();

  callerSent(id: number): void {
    if (this.callerInFlight[id] === 0) this.callerCount++;
    this.callerInFlight[id] = 1;
    this.lastCaller = id;
  }

  callerAcked(id: number): void {
    if (this.callerInFlight[id] === 1) this.callerCount--;
    this.callerInFlight[id] = 0;
    this.pubrecReceived.delete(id);
  }

  /** The caller's publishes sent and not acknowledged yet (PUBACK, PUBCOMP or a refusal). */
  get callerOutstanding(): number {
    return this.callerCount;
  }

  isOwn(id: number): boolean {
    return this.own.has(id);
  }

  /** An id for a packet of the client's own, or undefined when none is free. */
  allocateOwn(): number | undefined {
    for (let id = CALLER_MAX_PACKET_ID + 1; id <= 65_535; id++) {
      if (this.callerInFlight[id] === 0 && !this.own.has(id)) {
        this.own.add(id);
        return id;
      }
    }
    return undefined;
  }

  /** True when the id was one of ours (now free again). */
  releaseOwn(id: number): boolean {
    return this.own.delete(id);
  }

  /** The connection is gone: our own packets are not resent. */
  dropOwn(): void {
    this.own.clear();
  }

  markReleased(id: number): void {
    this.pubrecReceived.add(id);
  }

  isReleased(id: number): boolean {
    return this.pubrecReceived.has(id);
  }

  /** Inbound QoS 2 ids a previous run delivered and did not see released (InboundQos2Log). */
  seedInbound(ids: Iterable<number>): void {
    for (const id of ids) this.inboundQos2.add(id);
  }

  /** Records an inbound QoS 2 id; false when it is already waiting for PUBREL (a resend). */
  inboundFirst(id: number): boolean {
    if (this.inboundQos2.has(id)) return false;
    this.inboundQos2.add(id);
    return true;
  }

  inboundReleased(id: number): void {
    this.inboundQos2.delete(id);
  }

  /** The broker started a new session: no QoS 2 exchange survives [MQTT-4.4.0-1]. */
  newSession(): void {
    this.pubrecReceived.clear();
    this.inboundQos2.clear();
  }
}
