/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7): the acknowledgement side of the QoS 1
 * and QoS 2 flows, both directions.
 */
import { encodeAck, type IPubackPacket, type IPubcompPacket, type IPubrecPacket, type IPubrelPacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { V5_REASON } from '../reason-codes.js';
import { afterCommit } from './subscribe.js';

export function handlePuback(conn: Connection, p: IPubackPacket): Violation | undefined {
  if (!conn.session!.onPuback(p.messageId ?? 0)) conn.log.debug({ id: p.messageId }, 'PUBACK for unknown packet id ignored');
  return undefined;
}

export function handlePubrec(conn: Connection, p: IPubrecPacket): Violation | undefined {
  const id = p.messageId ?? 0;
  if (!conn.session!.onPubrec(id, p.reasonCode ?? 0)) {
    // Answer an unknown id so the client can finish its flow (MQTT 5: 0x92 Packet Identifier not found).
    if (conn.version === 5) conn.send({ cmd: 'pubrel', messageId: id, reasonCode: V5_REASON['packet-identifier-not-found'] });
    else conn.send({ cmd: 'pubrel', messageId: id });
  }
  return undefined;
}

/** PUBREL releases the incoming QoS 2 packet id; PUBCOMP answers it [MQTT-4.3.3-11]. */
export function handlePubrel(conn: Connection, p: IPubrelPacket): Violation | undefined {
  const id = p.messageId ?? 0;
  const session = conn.session!;
  const known = session.removeQos2In(id);
  if (!known && conn.version === 5) conn.send({ cmd: 'pubcomp', messageId: id, reasonCode: V5_REASON['packet-identifier-not-found'] });
  else if (known && session.journal !== undefined) {
    // A persistent session's packet id is released in the file before PUBCOMP: after a
    // crash a stale id would take the client's next PUBLISH with it (free again once it
    // had PUBCOMP) for a resend, or cut the client off, and that message would be lost.
    afterCommit(conn, session.journal.committed(), 'QoS 2 release', () => conn.writeRaw(encodeAck('pubcomp', id)));
  } else conn.writeRaw(encodeAck('pubcomp', id));
  return undefined;
}

export function handlePubcomp(conn: Connection, p: IPubcompPacket): Violation | undefined {
  if (!conn.session!.onPubcomp(p.messageId ?? 0)) conn.log.debug({ id: p.messageId }, 'PUBCOMP for unknown packet id ignored');
  return undefined;
}
