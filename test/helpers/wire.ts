/** Raw MQTT bytes for tests that must send what no encoder would produce. */

/** The Remaining Length variable byte integer (§2.2.3); at most `maxBytes` bytes. */
export function remainingLength(n: number, maxBytes = 4): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0 && out.length < maxBytes);
  return out;
}

/** A User Property (0x26) as PUBLISH/CONNECT property bytes. */
export function userPropertyPair(k: string, v: string): number[] {
  return [0x26, 0, k.length, ...Buffer.from(k), 0, v.length, ...Buffer.from(v)];
}

/** The User Properties of the first PUBLISH in `bytes`, in wire order. */
export function userPairs(bytes: Buffer): string[] {
  let o = 1;
  while ((bytes[o]! & 0x80) !== 0) o++;
  o += 1;
  o += 2 + bytes.readUInt16BE(o) + ((bytes[0]! >> 1) & 3 ? 2 : 0);
  const end = o + 1 + bytes[o]!; // property length < 128 here
  const out: string[] = [];
  const str = (at: number): [string, number] => [bytes.toString('utf8', at + 2, at + 2 + bytes.readUInt16BE(at)), at + 2 + bytes.readUInt16BE(at)];
  for (o += 1; o < end; ) {
    const id = bytes[o++]!;
    if (id === 0x26) {
      const [k, next] = str(o);
      const [v, after] = str(next);
      out.push(`${k}=${v}`);
      o = after;
    } else if (id === 0x0b) o += 1;
    else if (id === 0x23) o += 2;
    else throw new Error(`property 0x${id.toString(16)} not expected`);
  }
  return out;
}

/** `bytes` (whole MQTT packets) from the first packet of `type` (3 = PUBLISH) on. */
export function fromFirst(bytes: Buffer, type: number): Buffer {
  for (let o = 0; o < bytes.length; ) {
    if (bytes[o]! >> 4 === type) return bytes.subarray(o);
    let len = 0;
    let mul = 1;
    let i = o + 1;
    for (;;) {
      const b = bytes[i++]!;
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    o = i + len;
  }
  throw new Error(`no packet of type ${type} in ${bytes.length} bytes`);
}
