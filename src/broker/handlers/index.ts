/**
 * Packet dispatch: one handler file per packet type. Handlers return a Violation when
 * the client must be cut off; the connection turns it into the protocol's answer.
 */
import type { Packet } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { handleConnect } from './connect.js';
import { handlePublish } from './publish.js';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './pub-acks.js';
import { handleSubscribe } from './subscribe.js';
import { handleUnsubscribe } from './unsubscribe.js';
import { handleDisconnect } from './disconnect.js';

export function handlePacket(conn: Connection, packet: Packet, raw: Buffer): Violation | undefined {
  if (conn.state === 'awaiting-connect') {
    // The first packet from the client MUST be CONNECT [MQTT-3.1.0-1].
    if (packet.cmd !== 'connect') return { outcome: 'protocol-error', detail: `first packet was ${packet.cmd.toUpperCase()}, not CONNECT` };
    return handleConnect(conn, packet, raw);
  }
  switch (packet.cmd) {
    case 'publish':
      return handlePublish(conn, packet, raw);
    case 'puback':
      return handlePuback(conn, packet);
    case 'pubrec':
      return handlePubrec(conn, packet);
    case 'pubrel':
      return handlePubrel(conn, packet);
    case 'pubcomp':
      return handlePubcomp(conn, packet);
    case 'subscribe':
      return handleSubscribe(conn, packet, raw);
    case 'unsubscribe':
      return handleUnsubscribe(conn, packet, raw);
    case 'pingreq':
      // PINGREQ has no variable header and no payload (§3.12): more bytes are malformed.
      if (raw.length !== 2) return { outcome: 'malformed-packet', detail: 'PINGREQ with a payload' };
      conn.send({ cmd: 'pingresp' }); // [MQTT-3.12.4-1]
      return undefined;
    case 'disconnect':
      return handleDisconnect(conn, packet);
    case 'connect':
      // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
      return { outcome: 'protocol-error', detail: 'second CONNECT on one connection' };
    case 'auth':
      // No Authentication Method was agreed in CONNECT, so AUTH is a protocol error (§4.12).
      return { outcome: 'protocol-error', detail: 'AUTH without an agreed authentication method' };
    default:
      return { outcome: 'protocol-error', detail: `${packet.cmd.toUpperCase()} is sent by servers, not clients` };
  }
}
