/** UNSUBSCRIBE → UNSUBACK (§3.10, §3.11). */
import type { IUnsubscribePacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { V5_REASON } from '../reason-codes.js';
import { badlyEncoded } from './wire-strings.js';
import { afterCommit } from './subscribe.js';

export function handleUnsubscribe(conn: Connection, p: IUnsubscribePacket, raw: Buffer): Violation | undefined {
  if (p.unsubscriptions.length === 0) return { outcome: 'protocol-error', detail: 'UNSUBSCRIBE without filters [MQTT-3.10.3-2]' };
  // A non-zero Packet Identifier [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]).
  if (!p.messageId) return { outcome: 'protocol-error', detail: 'UNSUBSCRIBE with packet id 0' };
  for (const f of p.unsubscriptions) {
    if (badlyEncoded(f, raw)) return { outcome: 'malformed-packet', detail: 'UNSUBSCRIBE filter: ill-formed UTF-8 or U+0000' };
  }
  const session = conn.session!;
  const journal = session.journal;
  const writes = journal?.writes ?? 0;
  const codes: number[] = [];
  for (const filter of p.unsubscriptions) {
    const existed = conn.ctx.removeSubscription(session, filter);
    codes.push(existed ? V5_REASON.success : V5_REASON['no-subscription-existed']);
  }
  // 3.1.1 UNSUBACK has no payload; v5 carries one reason code per filter.
  const answer = () => void conn.send({ cmd: 'unsuback', messageId: p.messageId ?? 0, granted: conn.version === 5 ? codes : [] });
  // Removed from the store before UNSUBACK, like SUBSCRIBE before SUBACK.
  if (journal !== undefined && journal.writes !== writes) afterCommit(conn, journal.committed(), 'unsubscribe', answer);
  else answer();
  return undefined;
}
