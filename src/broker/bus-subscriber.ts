/**
 * An in-process subscriber on the bus (serial command topics, MQTT-SN sessions, the
 * bridge). Delivery is synchronous; a throwing handler is logged, never propagated
 * into the router.
 */
import type { Logger } from 'pino';
import type { BusHandler } from '../core/bus.js';
import { originKey, type Message, type Origin, type QoS } from '../core/message.js';
import type { Subscriber } from './subscription-tree.js';

export class BusSubscriber implements Subscriber {
  readonly isOnline = true;
  routeMark = 0;

  constructor(
    readonly key: string,
    readonly originId: string,
    private readonly handler: BusHandler,
    private readonly log: Logger,
  ) {}

  deliver(msg: Message, qos: QoS, retainFlag: boolean, _subIds?: readonly number[]): void {
    const out = qos === msg.qos && retainFlag === msg.retain ? msg : { ...msg, qos, retain: retainFlag };
    try {
      this.handler(out);
    } catch (err) {
      this.log.error({ err, topic: msg.topic }, 'bus subscriber failed');
    }
  }
}

/** Makes bus subscribers: one per subscription, or one per `member` (BusSubscribeOptions.member). */
export class BusSubscribers {
  private seq = 0;
  private readonly members = new WeakMap<object, BusSubscriber>();

  for(origin: Origin, handler: BusHandler, member: object | undefined, log: Logger): BusSubscriber {
    let sub = member === undefined ? undefined : this.members.get(member);
    if (sub === undefined) {
      sub = new BusSubscriber(`\u0000bus:${++this.seq}`, originKey(origin), handler, log);
      if (member !== undefined) this.members.set(member, sub);
    }
    return sub;
  }
}
