/**
 * Retained messages by topic [MQTT-3.3.1-5..11]. An empty payload clears the topic.
 * Expired messages are dropped on read. The store behind it is in memory in this
 * issue; the persistence layer will implement the same interface.
 */
import type { StampMover } from '../core/clock-steps.js';
import { ownPayload, type Message } from '../core/message.js';
import { topicMatches } from '../core/topic.js';

export interface RetainedStore {
  set(msg: Message): void;
  /** Every retained message whose topic matches `filter`, not expired at `now`. */
  match(filter: string, now: number): Message[];
  readonly size: number;
  /** The wall clock stepped: the Message Expiry of every retained message moves with it. */
  clockStepped?(mover: StampMover): void;
}

export class MemoryRetainedStore implements RetainedStore {
  private readonly byTopic = new Map<string, Message>();

  get size(): number {
    return this.byTopic.size;
  }

  set(msg: Message): void {
    if (msg.payload.length === 0) this.byTopic.delete(msg.topic);
    else this.byTopic.set(msg.topic, ownPayload(msg));
  }

  clockStepped(mover: StampMover): void {
    for (const m of this.byTopic.values()) mover.message(m);
  }

  match(filter: string, now: number): Message[] {
    const out: Message[] = [];
    const exact = !filter.includes('+') && !filter.includes('#');
    if (exact) {
      const m = this.byTopic.get(filter);
      if (m !== undefined) this.keepIfLive(m, now, out);
      return out;
    }
    for (const m of this.byTopic.values()) {
      if (topicMatches(filter, m.topic)) this.keepIfLive(m, now, out);
    }
    return out;
  }

  private keepIfLive(m: Message, now: number, out: Message[]): void {
    if (m.expiresAt !== undefined && m.expiresAt <= now) {
      this.byTopic.delete(m.topic);
      return;
    }
    out.push(m);
  }
}
