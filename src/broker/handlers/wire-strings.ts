/**
 * UTF-8 strings from the wire. The decoder turns ill-formed bytes into U+FFFD, which is
 * also a legal character a client may really send; a U+FFFD that was really sent
 * re-encodes to bytes present in the raw packet, a substituted one does not.
 * Ill-formed UTF-8 or U+0000 makes the packet malformed [MQTT-1.5.3-1/-2]
 * (v5 [MQTT-1.5.4-1/-2]).
 */
export function badlyEncoded(s: string, raw: Buffer): boolean {
  if (s.includes('\u0000')) return true;
  return s.includes('\ufffd') && !raw.includes(Buffer.from(s, 'utf8'));
}
