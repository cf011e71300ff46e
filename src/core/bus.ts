import type { Message, QoS } from './message.js';

/**
 * The in-process bus. The MQTT broker implements it; serial drivers, the MQTT-SN
 * gateway and the bridge publish and subscribe through it, never through a fake socket.
 */
export interface BusSubscribeOptions {
  qos: QoS;
  /** Do not deliver messages whose origin equals this subscriber's origin (MQTT 5 No Local). */
  noLocal?: boolean;
  /** Keep the retain flag as published instead of clearing it on live delivery. */
  retainAsPublished?: boolean;
  /** Deliver matching retained messages right after subscribing. */
  sendRetained?: boolean;
  /**
   * Subscriptions made with the same `member` object are one subscriber, as one MQTT session's
   * are: a message matching several of them is delivered once, at the highest QoS of those
   * that match [MQTT-3.3.4-2]. The first such subscription's handler receives them all.
   */
  member?: object;
}

export interface BusSubscription {
  unsubscribe(): void;
}

/** A delivery that returns a promise makes the publisher wait for it (durable consumers). */
export type BusHandler = (msg: Message) => void;

/**
 * A durable sink (the bridge outbox) sees every publish it selects before the
 * publisher is acknowledged. `accept` resolves after the message is committed.
 */
export interface DurableSink {
  readonly name: string;
  /** Whether this publish goes to the sink (its origin matters: a bridge never takes back what it brought in). */
  selects(msg: Message): boolean;
  /** Every sink that selected a publish gets the same `msg` object, in one synchronous pass (bridges group their appends by it). */
  accept(msg: Message): Promise<void>;
}

export interface Bus {
  /**
   * Routes a message to local subscribers and durable sinks. Returns undefined when
   * nothing durable was involved, or a promise that settles when every durable sink
   * that selected the message has committed it (reject = not accepted).
   */
  publish(msg: Message): Promise<void> | undefined;
  subscribe(filter: string, origin: Message['origin'], opts: BusSubscribeOptions, handler: BusHandler): BusSubscription;
  addDurableSink(sink: DurableSink): () => void;
}
