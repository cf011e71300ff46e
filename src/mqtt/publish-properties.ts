/**
 * The PUBLISH properties the fast encoder of codec.ts writes itself (§3.3.2.3): the kinds a
 * forwarded message carries. propertiesLength answers undefined for anything else, and the
 * caller falls back to mqtt-packet; test/mqtt/codec.test.ts checks that both give the same
 * bytes.
 */
import { wireOrder } from './user-property-order.js';

/** Octets of a Variable Byte Integer (§1.5.5) holding x. */
export function varIntSize(x: number): number {
  return x < 128 ? 1 : x < 16384 ? 2 : x < 2097152 ? 3 : 4;
}

/** Variable Byte Integer (§1.5.5) at `o`; returns the offset after it. */
export function writeVarInt(buf: Buffer, o: number, x: number): number {
  do {
    let d = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) d |= 0x80;
    buf[o++] = d;
  } while (x > 0);
  return o;
}

/** PUBLISH properties encoded here (§3.3.2.3), by their identifier. */
const PUBLISH_PROPS: Record<string, number> = {
  payloadFormatIndicator: 0x01,
  messageExpiryInterval: 0x02,
  contentType: 0x03,
  responseTopic: 0x08,
  correlationData: 0x09,
  subscriptionIdentifier: 0x0b,
  topicAlias: 0x23,
  userProperties: 0x26,
};

/** A Subscription Identifier (§3.3.2.3.8) as a Variable Byte Integer: its octets, or undefined when out of range. */
function subIdLength(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 268_435_455 ? 1 + varIntSize(x) : undefined;
}

const MAX_STRING = 65535;

/** One user property (name and value) on the wire, or undefined when not a string pair. */
function userPairLength(nlen: number, x: unknown): number | undefined {
  if (typeof x !== 'string') return undefined;
  const xlen = Buffer.byteLength(x, 'utf8');
  return nlen > MAX_STRING || xlen > MAX_STRING ? undefined : 5 + nlen + xlen;
}

/** Bytes of the user properties (each value a string or a list of them; no array allocated per value). */
function userPropertiesLength(u: Record<string, unknown>): number | undefined {
  let n = 0;
  for (const name in u) {
    if (!Object.prototype.hasOwnProperty.call(u, name)) continue;
    const nlen = Buffer.byteLength(name, 'utf8');
    const x = u[name];
    if (Array.isArray(x)) {
      for (const one of x) {
        const m = userPairLength(nlen, one);
        if (m === undefined) return undefined;
        n += m;
      }
    } else {
      const m = userPairLength(nlen, x);
      if (m === undefined) return undefined;
      n += m;
    }
  }
  return n;
}

/** Bytes of the property block, or undefined when it holds anything not encoded here. */
export function propertiesLength(props: Record<string, unknown>): number | undefined {
  let n = 0;
  for (const k in props) {
    if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
    const v = props[k];
    if (v === null || v === undefined) continue;
    switch (PUBLISH_PROPS[k]) {
      case 0x01:
        if (typeof v !== 'boolean') return undefined;
        n += 2;
        break;
      case 0x02:
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) return undefined;
        n += 5;
        break;
      case 0x03:
      case 0x08: {
        if (typeof v !== 'string') return undefined;
        const len = Buffer.byteLength(v, 'utf8');
        if (len > MAX_STRING) return undefined;
        n += 3 + len;
        break;
      }
      case 0x09:
        if (!Buffer.isBuffer(v) || v.length > MAX_STRING) return undefined;
        n += 3 + v.length;
        break;
      case 0x23:
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) return undefined;
        n += 3;
        break;
      case 0x0b: {
        for (const one of Array.isArray(v) ? v : [v]) {
          const m = subIdLength(one);
          if (m === undefined) return undefined;
          n += m;
        }
        break;
      }
      case 0x26: {
        const u = typeof v === 'object' ? userPropertiesLength(v as Record<string, unknown>) : undefined;
        if (u === undefined) return undefined;
        n += u;
        break;
      }
      default:
        return undefined;
    }
  }
  return n;
}

function writeString(buf: Buffer, o: number, s: string): number {
  const len = buf.write(s, o + 2, 'utf8');
  buf.writeUInt16BE(len, o);
  return o + 2 + len;
}

/** Writes the properties measured by propertiesLength; returns the offset after them. */
export function writeProperties(buf: Buffer, o: number, props: Record<string, unknown>): number {
  for (const k in props) {
    if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
    const v = props[k];
    if (v === null || v === undefined) continue;
    const id = PUBLISH_PROPS[k]!;
    if (id === 0x26) {
      const u = v as Record<string, unknown>;
      const ordered = wireOrder(u);
      if (ordered !== undefined) {
        // As they came in [MQTT-3.3.2-18] (user-property-order.ts); the same pairs, so the same length.
        for (const [name, one] of ordered) {
          buf[o++] = id;
          o = writeString(buf, writeString(buf, o, name), one);
        }
        continue;
      }
      for (const name in u) {
        if (!Object.prototype.hasOwnProperty.call(u, name)) continue;
        const x = u[name];
        if (Array.isArray(x)) {
          for (const one of x) {
            buf[o++] = id;
            o = writeString(buf, writeString(buf, o, name), one as string);
          }
        } else {
          buf[o++] = id;
          o = writeString(buf, writeString(buf, o, name), x as string);
        }
      }
      continue;
    }
    if (id === 0x0b) {
      for (const one of Array.isArray(v) ? v : [v]) {
        buf[o++] = id;
        o = writeVarInt(buf, o, one as number);
      }
      continue;
    }
    buf[o++] = id;
    if (id === 0x01) buf[o++] = v ? 1 : 0;
    else if (id === 0x23) o = buf.writeUInt16BE(v as number, o);
    else if (id === 0x02) o = buf.writeUInt32BE(v as number, o);
    else if (id === 0x09) {
      buf.writeUInt16BE((v as Buffer).length, o);
      o += 2 + (v as Buffer).copy(buf, o + 2);
    } else o = writeString(buf, o, v as string);
  }
  return o;
}
