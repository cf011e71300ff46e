/**
 * A 3.1.1 cloud cannot refuse a message with a reason code; some close the link instead:
 * Mosquitto closes a client that sends a packet larger than its `max_packet_size` (a 3.1.1
 * client was never told the size; an MQTT 5 one gets it in CONNACK and the forwarder drops
 * such rows as too-large), AWS IoT one that publishes where its policy forbids. After the
 * reconnect the forwarder sends the same row first again (it is the oldest in flight), the
 * link closes again, and so on for ever with the rest of the outbox behind it.
 *
 * This spots the pattern, the way an MQTT 5 PUBACK 0x87 / 0x95 is a refusal for good
 * (forwarder.ts): the link closed, not by us, within CLOSE_WINDOW_MS of sending the oldest
 * row in flight, with no ack from the cloud since that send, CLOSES_IN_A_ROW times in a row
 * for the same row, while the cloud took a smaller message before (since start). Then that
 * row is set aside: dropped, counted as cloud-refused, logged with its topic and size.
 *
 * The last condition keeps a cloud that takes nothing at all (every publish closes the
 * link) from losing the whole queue one row at a time. Its cost: after a restart that finds
 * such a row at the head of the outbox, no message went through yet and the row is not set
 * aside (the link keeps closing, logged at each close with the row's topic and size).
 */

/** Consecutive closes right after the same head-of-line row before it is set aside. */
export const CLOSES_IN_A_ROW = 3;
/** "Right after": the close comes within this long of the row's send (Mosquitto closes at once). */
export const CLOSE_WINDOW_MS = 1000;

export interface HeadSend {
  /** The row's outbox position. */
  seq: number;
  /** Topic and payload bytes. */
  size: number;
  /** Clock ms of its last send on the connection that closed; undefined when not sent on it. */
  sentAt: number | undefined;
}

export type CloseVerdict = { kind: 'other' } | { kind: 'suspect'; closes: number } | { kind: 'set-aside'; closes: number };

export class ClosingHead {
  private streak: { seq: number; closes: number } | undefined;
  private smallestTaken = Number.POSITIVE_INFINITY;

  /** The cloud acknowledged a row of `size` bytes. */
  taken(size: number): void {
    if (size < this.smallestTaken) this.smallestTaken = size;
  }

  /**
   * The link closed (not stopped by us). `head` is the oldest row in flight, `lastAckAt`
   * when the cloud last acknowledged one of our rows, `upAt` when the connection came up.
   */
  closed(head: HeadSend | undefined, lastAckAt: number, upAt: number, now: number): CloseVerdict {
    const right =
      head !== undefined && head.sentAt !== undefined && head.sentAt >= upAt && lastAckAt < head.sentAt && now - head.sentAt <= CLOSE_WINDOW_MS;
    if (!right) {
      this.streak = undefined;
      return { kind: 'other' };
    }
    const closes = this.streak?.seq === head.seq ? this.streak.closes + 1 : 1;
    this.streak = { seq: head.seq, closes };
    if (closes < CLOSES_IN_A_ROW || !(this.smallestTaken < head.size)) return { kind: 'suspect', closes };
    this.streak = undefined;
    return { kind: 'set-aside', closes };
  }
}
