/**
 * The buffered messages of persistent MQTT-SN sessions, kept as deliveries in the broker's
 * session journal under the key CONSUMER_KEY_PREFIX + "sn:" + client id.
 *
 * The journal on purpose, not a table of the MQTT-SN store: a publish whose routing writes
 * to the journal is acknowledged only after that commit (Broker.publish compares
 * `journal.writes` around the routing), so a PUBACK to whoever published a command for a
 * sleeping sensor means the command is on the disk. And the journal already cancels a row
 * added and removed within one batch: an awake sensor that acknowledges before the commit
 * costs no write.
 */
import { CONSUMER_KEY_PREFIX } from '../core/persistence.js';
import type { Message } from '../core/message.js';
import type { SnQueueStore, StoredItem } from '../mqttsn/persistence.js';
import type { SqliteStateJournal } from './state-journal.js';

const PREFIX = `${CONSUMER_KEY_PREFIX}sn:`;

export class JournalSnQueue implements SnQueueStore {
  constructor(
    private readonly journal: SqliteStateJournal,
    private readonly now: () => number = Date.now,
  ) {}

  add(clientId: string, msg: Message, qos: 1 | 2): number {
    const id = this.journal.nextDeliveryId();
    this.journal.addDelivery(PREFIX + clientId, { id, msg, qos, retainFlag: msg.retain, subIds: undefined, packetId: 0, state: 'queued' });
    return id;
  }

  remove(rowId: number): void {
    this.journal.removeDelivery(rowId);
  }

  clear(clientId: string): void {
    this.journal.deleteSession(PREFIX + clientId);
  }

  load(clientId: string, max: number): StoredItem[] {
    const { deliveries } = this.journal.restoreConsumer(PREFIX + clientId, this.now(), { maxQueuedMessages: max, maxQueuedBytes: Number.POSITIVE_INFINITY, maxSessionExpiry: 0 });
    return deliveries.map((d) => ({ rowId: d.id, msg: d.msg, qos: d.qos }));
  }

  prune(keep: ReadonlySet<string>): void {
    for (const key of this.journal.consumerKeys(PREFIX)) {
      if (!keep.has(key.slice(PREFIX.length))) this.journal.deleteSession(key);
    }
  }
}
