/**
 * MQTT 5 properties that appear twice. Only the User Property may repeat in any packet, and
 * the Subscription Identifier in a PUBLISH; for every other one "it is a Protocol Error to
 * include [it] more than once" (§3.1.2.11, §3.3.2.3, §3.4.2.2, … one sentence per property).
 *
 * mqtt-packet does not refuse a repeated property: it makes an array of the values, or keeps
 * the last one when the first was 0 or false. Either way a garbled value would reach the
 * broker (a Session Expiry Interval the store cannot hold, a Receive Maximum that stalls
 * delivery, a repeated Content Type forwarded to subscribers who then drop the connection).
 * So the raw property bytes are read again here, after mqtt-packet accepted the packet: its
 * structure is known to be sound, and this only counts identifiers.
 */

/** Octets of a property's value by identifier; 0 = a variable byte integer; -1 = length-prefixed (binary or UTF-8 string); -2 = a string pair. */
const VALUE_SIZE: ReadonlyMap<number, number> = new Map([
  [0x01, 1], [0x02, 4], [0x03, -1], [0x08, -1], [0x09, -1], [0x0b, 0], [0x11, 4], [0x12, -1], [0x13, 2],
  [0x15, -1], [0x16, -1], [0x17, 1], [0x18, 4], [0x19, 1], [0x1a, -1], [0x1c, -1], [0x1f, -1], [0x21, 2],
  [0x22, 2], [0x23, 2], [0x24, 1], [0x25, 1], [0x26, -2], [0x27, 4], [0x28, 1], [0x29, 1], [0x2a, 1],
]);

const USER_PROPERTY = 0x26;
const SUBSCRIPTION_IDENTIFIER = 0x0b;
const seen = new Uint8Array(0x30);

/** A variable byte integer at `o`: its value and the offset after it (undefined past the end). */
export function varInt(raw: Buffer, o: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0, mult = 1; i < 4; i++, mult *= 128) {
    const b = raw[o + i];
    if (b === undefined) return undefined;
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return { value, next: o + i + 1 };
  }
  return undefined;
}

/**
 * Reads the property section at `o`; returns the identifier that appears twice (0 if none),
 * or undefined if the bytes do not read as properties (mqtt-packet's verdict then stands),
 * with the offset after the section.
 */
function section(raw: Buffer, o: number, mayRepeat: ReadonlySet<number>, visit?: (id: number, at: number) => void): { repeated: number; next: number } | undefined {
  const len = varInt(raw, o);
  if (len === undefined) return undefined;
  const end = len.next + len.value;
  if (end > raw.length) return undefined;
  seen.fill(0);
  for (let i = len.next; i < end; ) {
    const id = raw[i++]!;
    const size = VALUE_SIZE.get(id);
    if (size === undefined) return undefined;
    if (seen[id] === 1 && !mayRepeat.has(id)) return { repeated: id, next: end };
    seen[id] = 1;
    visit?.(id, i);
    if (size > 0) i += size;
    else if (size === 0) {
      const v = varInt(raw, i);
      if (v === undefined) return undefined;
      i = v.next;
    } else {
      for (let k = 0; k < -size; k++) {
        if (i + 2 > end) return undefined;
        i += 2 + raw.readUInt16BE(i);
      }
    }
  }
  return { repeated: 0, next: end };
}

const ONLY_USER = new Set([USER_PROPERTY]);
const PUBLISH_REPEATS = new Set([USER_PROPERTY, SUBSCRIPTION_IDENTIFIER]);

/**
 * The identifier of a property that appears more than once where MQTT 5 forbids it, in a
 * packet mqtt-packet parsed (with the Will properties of a CONNECT); 0 if there is none.
 */
export function repeatedProperty(raw: Buffer): number {
  const type = raw[0]! >> 4;
  const remaining = varInt(raw, 1);
  if (remaining === undefined) return 0;
  let o = remaining.next;
  const body = raw.length - o;
  const read = (at: number, repeats: ReadonlySet<number> = ONLY_USER): { repeated: number; next: number } | undefined =>
    at < raw.length ? section(raw, at, repeats) : undefined;
  switch (type) {
    case 1: {
      // CONNECT: protocol name, level, flags, keep alive, properties; then the client id and,
      // with the Will flag, the Will properties (§3.1.2, §3.1.3).
      if (body < 2) return 0;
      o += 2 + raw.readUInt16BE(o);
      const flags = raw[o + 1] ?? 0;
      const props = read(o + 4);
      if (props === undefined || props.repeated !== 0) return props?.repeated ?? 0;
      if ((flags & 0x04) === 0 || props.next + 2 > raw.length) return 0;
      return read(props.next + 2 + raw.readUInt16BE(props.next))?.repeated ?? 0;
    }
    case 2:
    case 9:
    case 11:
      // CONNACK (flags, reason code), SUBACK and UNSUBACK (packet id): what the bridge reads.
      return read(o + 2)?.repeated ?? 0;
    case 3: {
      if (body < 2) return 0;
      o += 2 + raw.readUInt16BE(o) + (((raw[0]! >> 1) & 3) > 0 ? 2 : 0);
      return read(o, PUBLISH_REPEATS)?.repeated ?? 0;
    }
    case 4:
    case 5:
    case 6:
    case 7:
      // PUBACK…PUBCOMP: packet id, reason code, properties only when the length says so (§3.4.2.2).
      return remaining.value >= 4 ? (read(o + 3)?.repeated ?? 0) : 0;
    case 8:
    case 10:
      return read(o + 2)?.repeated ?? 0;
    case 14:
    case 15:
      // DISCONNECT, AUTH: reason code, then properties (§3.14.2.2, §3.15.2.2).
      return remaining.value >= 2 ? (read(o + 1)?.repeated ?? 0) : 0;
    default:
      return 0;
  }
}

/** Request Problem Information and Request Response Information: the CONNECT properties that must be 0 or 1. */
const CONNECT_FLAGS = new Set([0x17, 0x19]);

/**
 * The identifier of a CONNECT property that must be 0 or 1 and is not (0 if none): "It is a
 * Protocol Error to ... have a value other than 0 or 1" (§3.1.2.11.6, §3.1.2.11.7).
 * mqtt-packet reads any value as a boolean, so a client sending 2 would pass unnoticed.
 */
export function connectFlagOutOfRange(raw: Buffer): number {
  const remaining = varInt(raw, 1);
  if (remaining === undefined || remaining.next + 2 > raw.length) return 0;
  const props = remaining.next + 2 + raw.readUInt16BE(remaining.next) + 4; // protocol name, level, flags, keep alive
  if (props >= raw.length) return 0;
  let bad = 0;
  section(raw, props, ONLY_USER, (id, at) => {
    if (bad === 0 && CONNECT_FLAGS.has(id) && (raw[at] ?? 0) > 1) bad = id;
  });
  return bad;
}
