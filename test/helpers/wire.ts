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
