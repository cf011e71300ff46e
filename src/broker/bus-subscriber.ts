/**
 * An in-process subscriber on the bus (serial command topics, MQTT-SN sessions, the
 * bridge). Delivery is synchronous; a throwing handler is logged, never propagated
 * into the router.
 */
import type { Logger } from 'pino';
import type { BusHandler } from '../core/bus.js';
import type { Message, QoS } from '../core/message.js';
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
