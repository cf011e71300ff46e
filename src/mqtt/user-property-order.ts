/**
 * The order of a PUBLISH's User Properties, which the server MUST keep when it forwards the
 * message [MQTT-3.3.2-18]. mqtt-packet decodes them into an object, `{ name: value }` or
 * `{ name: [values] }`: a name given twice with another between (a=1, b=2, a=3) comes out
 * grouped (a=1, a=3, b=2), and names that read as integers ("2", "10") come first. When the
 * object's order differs from the wire's, the pairs in wire order ride along on the object
 * under a symbol (not enumerable: copies and JSON keep the grouped form), and the PUBLISH
 * encoder writes them in that order.
 */
import { varInt } from './property-scan.js';

const ORDER = Symbol('outpost.userPropertyOrder');

type Pairs = readonly (readonly [string, string])[];
type UserProps = Record<string, string | string[]>;

/** The pairs in wire order when they differ from the object's own order; undefined otherwise. */
export function wireOrder(u: object): Pairs | undefined {
  return (u as { [ORDER]?: Pairs })[ORDER];
}

/** The user properties of `raw` (a v5 PUBLISH mqtt-packet parsed into `u`) keep their wire order. */
export function keepWireOrder(u: UserProps, raw: Buffer): void {
  const qos = (raw[0]! >> 1) & 3;
  const rem = varInt(raw, 1);
  if (rem === undefined || rem.next + 2 > raw.length) return;
  mark(u, readPairs(raw, rem.next + 2 + raw.readUInt16BE(rem.next) + (qos > 0 ? 2 : 0)));
}

/** The Will's user properties of `raw` (a v5 CONNECT with a Will parsed into `u`) keep their wire order [MQTT-3.1.3-10]. */
export function keepWillWireOrder(u: UserProps, raw: Buffer): void {
  const rem = varInt(raw, 1);
  if (rem === undefined || rem.next + 2 > raw.length) return;
  let o = rem.next + 2 + raw.readUInt16BE(rem.next) + 4; // protocol name, level, flags, keep alive
  const props = varInt(raw, o);
  if (props === undefined || props.next + props.value + 2 > raw.length) return;
  o = props.next + props.value;
  mark(u, readPairs(raw, o + 2 + raw.readUInt16BE(o))); // after the client id
}

/** The pairs of `u` in the order they go on the wire: the wire order it came with, else its own. */
export function orderedPairs(u: UserProps): [string, string][] {
  const ordered = wireOrder(u);
  if (ordered !== undefined) return ordered.map(([name, value]) => [name, value]);
  const out: [string, string][] = [];
  for (const name in u) {
    const v = u[name]!;
    for (const one of Array.isArray(v) ? v : [v]) out.push([name, one]);
  }
  return out;
}

/**
 * User properties made of `pairs` (a name may repeat), grouped as mqtt-packet would decode
 * them; when the grouping changes the order, the pairs ride along as the wire order. Built
 * from the pairs alone, so the object and its wire order always hold the same pairs.
 */
export function fromPairs(pairs: readonly (readonly [string, string])[]): UserProps {
  const u: UserProps = {};
  for (const [name, value] of pairs) {
    const had = Object.prototype.hasOwnProperty.call(u, name) ? u[name] : undefined;
    // Defined, not assigned: a property named "__proto__" stays a property.
    Object.defineProperty(u, name, {
      value: had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value],
      enumerable: true, writable: true, configurable: true,
    });
  }
  mark(u, pairs.map(([name, value]) => [name, value] as const));
  return u;
}

function mark(u: UserProps, pairs: Pairs | undefined): void {
  if (pairs === undefined || sameOrder(u, pairs)) return;
  Object.defineProperty(u, ORDER, { value: pairs, enumerable: false });
}

/** The user property pairs of the property section at `o`, in wire order (undefined if the bytes do not read as expected). */
function readPairs(raw: Buffer, o: number): Pairs | undefined {
  if (o > raw.length) return undefined;
  const len = varInt(raw, o);
  if (len === undefined) return undefined;
  const end = len.next + len.value;
  if (end > raw.length) return undefined;
  const out: [string, string][] = [];
  // Every length is checked against the section's end: garbage must not throw here.
  const str = (at: number): [string, number] | undefined => {
    if (at + 2 > end) return undefined;
    const next = at + 2 + raw.readUInt16BE(at);
    return next > end ? undefined : [raw.toString('utf8', at + 2, next), next];
  };
  for (o = len.next; o < end; ) {
    const id = raw[o++]!;
    if (id === 0x26) {
      const name = str(o);
      const value = name === undefined ? undefined : str(name[1]);
      if (name === undefined || value === undefined) return undefined;
      out.push([name[0], value[0]]);
      o = value[1];
    } else if (id === 0x01) o += 1;
    else if (id === 0x02 || id === 0x18) o += 4; // Message Expiry, Will Delay
    else if (id === 0x23) o += 2;
    else if (id === 0x03 || id === 0x08 || id === 0x09) { // Content Type, Response Topic, Correlation Data
      const v = str(o);
      if (v === undefined) return undefined;
      o = v[1];
    } else if (id === 0x0b) {
      const v = varInt(raw, o);
      if (v === undefined) return undefined;
      o = v.next;
    } else return undefined;
  }
  return o === end ? out : undefined;
}

/** True when iterating `u` (arrays expanded) gives `pairs` in the same order. */
function sameOrder(u: UserProps, pairs: Pairs): boolean {
  let i = 0;
  for (const name in u) {
    const v = u[name]!;
    for (const one of Array.isArray(v) ? v : [v]) {
      const p = pairs[i++];
      if (p === undefined || p[0] !== name || p[1] !== one) return false;
    }
  }
  return i === pairs.length;
}
