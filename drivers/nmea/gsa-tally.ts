/**
 * satellites_used of a multi-constellation receiver. It sends one GSA per system each epoch
 * ($GNGSA for GPS, then for GLONASS, Galileo, BeiDou; or $GPGSA, $GLGSA…), each listing only
 * that system's satellites (NMEA 0183 v4.10 §6.3 GSA, whose last field is the system ID;
 * receivers in NMEA 4.0 mode, the u-blox M8 default, leave it out). Published one by one,
 * satellites_used flapped 8, 3, 3 in one second while GGA said 14, and the last, smallest,
 * stayed on the topic. The tally keeps each system's latest count and gives their sum.
 *
 * A GSA's system: its system ID; else its talker (GP, GL, GA, GB…); for a GN talker without
 * ID, the range of its first satellite (NMEA 4.0: 1–64 GPS and SBAS, 65–96 GLONASS).
 */

/** More keys than this are garbage that passed the checksum: start again. */
const MAX_SYSTEMS = 16;

export class GsaTally {
  private readonly counts = new Map<string, number>();

  /**
   * A GSA with its talker, system ID field, fix type field and listed satellites; returns
   * the satellites used over all systems.
   */
  add(talker: string, systemId: string | undefined, fixType: string | undefined, prns: readonly string[]): number {
    const key = systemOf(talker, systemId, prns);
    if (key === undefined) {
      // A GN sentence without ID or satellites: no fix (all systems used none), or nothing to learn.
      if (fixType === '1') this.counts.clear();
    } else {
      if (!this.counts.has(key) && this.counts.size >= MAX_SYSTEMS) this.counts.clear();
      this.counts.set(key, prns.length);
    }
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }
}

function systemOf(talker: string, systemId: string | undefined, prns: readonly string[]): string | undefined {
  if (systemId !== undefined && /^[0-9A-Fa-f]$/.test(systemId)) return `id ${systemId.toUpperCase()}`;
  if (talker !== 'GN') return talker;
  const first = Number(prns[0]);
  if (!Number.isInteger(first)) return undefined;
  return first >= 65 && first <= 96 ? 'GN glonass' : first <= 64 ? 'GN gps' : `GN ${Math.floor(first / 100)}xx`;
}
