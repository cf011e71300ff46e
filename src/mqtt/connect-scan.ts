/**
 * Two rules of CONNECT that mqtt-packet does not enforce, checked on the raw bytes after it
 * parsed the packet (so the structure is known to be sound):
 *
 * - The protocol name goes with the level: "MQIsdp" is MQTT 3.1 (level 3), "MQTT" is 3.1.1
 *   (4) and 5.0 (5). mqtt-packet accepts either name with any level; a CONNECT that names
 *   one protocol and asks for another's level is not one we may process as the latter
 *   [MQTT-3.1.2-1], so it is answered as an unacceptable protocol level [MQTT-3.1.2-2].
 * - Nothing follows the last field the flags announce. mqtt-packet stops reading there, so
 *   a CONNECT of 3.1.1 or 5.0 with bytes after its payload was accepted; its Remaining Length
 *   disagrees with its content, which makes it malformed (§1.5, §2.1.4).
 */
import { varInt } from './property-scan.js';

/** The protocol name and level of a CONNECT disagree (e.g. "MQIsdp" at level 4); the reason, or undefined. */
export function mismatchedProtocol(protocolId: string | undefined, level: number | undefined): string | undefined {
  const v = (level ?? 4) & 0x7f; // bit 7: mqtt-packet's bridge flag
  if (protocolId === 'MQIsdp' && v !== 3) return `CONNECT with protocol name "MQIsdp" (MQTT 3.1) and protocol version ${v}`;
  if (protocolId === 'MQTT' && v === 3) return 'CONNECT with protocol name "MQTT" and protocol version 3 (3.1 is "MQIsdp")';
  return undefined;
}

/**
 * Octets of a parsed CONNECT after the last field its flags announce (0 when it ends where it
 * should); `v5`: it carries property sections (§3.1.2.11, §3.1.3.2).
 */
export function bytesAfterConnect(raw: Buffer, v5: boolean): number {
  const remaining = varInt(raw, 1);
  if (remaining === undefined) return 0;
  let o = remaining.next;
  const str = (): void => {
    o += o + 2 <= raw.length ? 2 + raw.readUInt16BE(o) : 2;
  };
  const props = (): void => {
    const len = varInt(raw, o);
    o = len === undefined ? raw.length + 1 : len.next + len.value;
  };
  str(); // protocol name
  const flags = raw[o + 1] ?? 0;
  o += 4; // level, flags, keep alive
  if (v5) props();
  str(); // client identifier
  if ((flags & 0x04) !== 0) {
    if (v5) props(); // Will properties
    str(); // Will topic
    str(); // Will payload
  }
  if ((flags & 0x80) !== 0) str(); // user name
  if ((flags & 0x40) !== 0) str(); // password
  return Math.max(0, raw.length - o);
}
