/** DISCONNECT from the client (§3.14). */
import type { IDisconnectPacket } from '../../mqtt/codec.js';
import type { Connection, Violation } from '../connection.js';
import { V5_REASON } from '../reason-codes.js';

export function handleDisconnect(conn: Connection, p: IDisconnectPacket): Violation | undefined {
  const session = conn.session!;
  if (conn.version === 5) {
    const requested = p.properties?.sessionExpiryInterval;
    if (requested !== undefined) {
      // Zero in CONNECT cannot become non-zero at DISCONNECT (§3.14.2.2.2).
      if (session.expiryInterval === 0 && requested !== 0) {
        return { outcome: 'protocol-error', detail: 'Session Expiry Interval changed from 0 at DISCONNECT' };
      }
      session.expiryInterval = Math.min(requested, conn.ctx.options.maxSessionExpiry);
    }
  }
  // Reason 0x04 keeps the Will; any other normal DISCONNECT discards it [MQTT-3.14.4-3].
  conn.graceful = !(conn.version === 5 && p.reasonCode === V5_REASON['disconnect-with-will']);
  conn.end();
  return undefined;
}
