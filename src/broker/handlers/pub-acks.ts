/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7): the acknowledgement side of the QoS 1
 * and QoS 2 flows, both directions.
 */
import { encodeAck, type IPubackPacket, type IPubcompPacket, type IPubrecPacket, type IPubrelPacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { V5_REASON } from '../reason-codes.js';

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
  const known = conn.session!.removeQos2In(id);
  if (!known && conn.version === 5) conn.send({ cmd: 'pubcomp', messageId: id, reasonCode: V5_REASON['packet-identifier-not-found'] });
  else conn.writeRaw(encodeAck('pubcomp', id));
  return undefined;
}

export function handlePubcomp(conn: Connection, p: IPubcompPacket): Violation | undefined {
  if (!conn.session!.onPubcomp(p.messageId ?? 0)) conn.log.debug({ id: p.messageId }, 'PUBCOMP for unknown packet id ignored');
  return undefined;
}
