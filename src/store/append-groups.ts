/**
 * One message selected by several bridges is one append per bridge, all in the same group
 * commit (the bus hands the message to every bridge in one synchronous pass). When the
 * publisher is told about a refusal and sends the message again (an MQTT or MQTT-SN QoS 1/2
 * publish: bridge.ts decides), those appends form a group
 * (Outbox.append's `group`), and the group is stored all or nothing:
 *
 *   some bridge with when_full: reject is full    → stored at none: the publisher is refused
 *     (PUBACK 0x97, MQTT-SN congestion), counted 'full-rejected' once per refusing bridge;
 *     the others store nothing, count nothing and drop no oldest row for it (the resend
 *     will be judged again). Stored at some bridges, the resend reached their clouds twice.
 *   no reject bridge refuses                      → every bridge applies its own policy:
 *     drop-oldest makes room, drop-newest drops it there (counted, the publisher is still
 *     acknowledged, as with one bridge).
 *
 * A message without a group (QoS 0, serial readings, cloud messages an inbound rule brought
 * in: nobody would send them again) is judged
 * by each bridge alone, as before: a full reject bridge does not cost the others a message.
 */
import { OutpostError } from '../core/errors.js';
import type { CommitTx, Outcome, PendingAppend } from './commit-tx.js';

/** Runs every append of one commit, in order, with the group rule above. */
export function appendAll(tx: CommitTx, appends: readonly PendingAppend[]): Outcome[] {
  const outcomes: Outcome[] = new Array<Outcome>(appends.length);
  let members: Map<object, number[]> | undefined;
  appends.forEach((a, i) => {
    if (a.group === undefined) return;
    members ??= new Map();
    const list = members.get(a.group);
    if (list === undefined) members.set(a.group, [i]);
    else list.push(i);
  });
  for (let i = 0; i < appends.length; i++) {
    if (outcomes[i] !== undefined) continue;
    const a = appends[i]!;
    const group = a.group === undefined ? undefined : members?.get(a.group);
    if (group === undefined || group.length < 2) {
      outcomes[i] = tx.append(a);
      continue;
    }
    // Judged before any member changes anything (a drop-oldest elsewhere must not drop for it).
    const refused = group.filter((j) => tx.refuses(appends[j]!));
    for (const j of group) {
      outcomes[j] = refused.length === 0 ? tx.append(appends[j]!) : refused.includes(j) ? tx.refuse(appends[j]!) : 'withheld';
    }
  }
  return outcomes;
}

/** Settles an append after its commit by its outcome. */
export function settle(a: PendingAppend, outcome: Outcome | undefined): void {
  if (outcome === 'full-rejected') {
    a.reject(new OutpostError('STORE_FULL', `the outbox of bridge ${a.bridge} is full (when_full: reject); the message was refused`));
  } else if (outcome === 'withheld') {
    a.reject(new OutpostError('STORE_FULL', `another bridge's outbox refused this message (when_full: reject); bridge ${a.bridge} did not store it either`));
  } else {
    a.resolve();
  }
}
