/** Counters of the MQTT-SN gateway: every dropped datagram or message is counted by reason. */
import { Tally } from '../core/tally.js';
import type { DecodeError } from './packets.js';

export type SnDropReason =
  | DecodeError
  | 'oversized'
  | 'flood'
  | 'unknown-peer'
  | 'unexpected'
  | 'invalid-topic'
  /** A topic or filter with more levels than broker.max_topic_levels (topic-limit.ts). */
  | 'too-many-levels'
  | 'qos-minus-one-source'
  | 'qos-minus-one-topic'
  /** A message for a client: its buffer was full. */
  | 'buffer-full'
  /** A QoS 0 message for a disconnected client. */
  | 'offline-qos0'
  | 'topic-table-full'
  | 'register-refused'
  | 'publish-refused'
  /** A message for a client that kept answering PUBACK "rejected: invalid topic ID" after re-registration. */
  | 'topic-id-rejected'
  /** A message for a client that kept answering "rejected: congestion" (N_retry waits). */
  | 'sensor-congested'
  /** A PUBLISH or SUBSCRIBE the ACL file refuses (auth.acl_file, `mqttsn <client id>` sections). */
  | 'not-authorized'
  | 'too-large-out'
  | 'session-ended'
  /** A change of a persistent session that could not be stored; its acknowledgement refused it. */
  | 'store-failed'
  /** A handler failed (a bug): the message was dropped, the gateway carries on. */
  | 'internal-error';

export class MqttsnMetrics {
  datagramsIn = 0;
  datagramsOut = 0;
  publishIn = 0;
  publishOut = 0;
  connects = 0;
  willsPublished = 0;
  retransmissions = 0;
  readonly drops = new Tally<SnDropReason>();

  drop(reason: SnDropReason, n = 1): void {
    this.drops.add(reason, n);
  }

  dropped(reason: SnDropReason): number {
    return this.drops.count(reason);
  }

  get totalDrops(): number {
    let n = 0;
    for (const v of this.drops.values()) n += v;
    return n;
  }
}
