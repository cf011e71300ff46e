/**
 * How an ACL rule's filter relates to a subscription filter: does the rule allow every
 * topic the subscription can match (covers), some of them (overlaps), or none (disjoint)?
 * Pure; both filters are assumed valid (§4.7).
 *
 *   rule sensors/#      filter sensors/+/temp  → covers   (no per-message check needed)
 *   rule sensors/a/#    filter sensors/#       → overlaps (granted, checked at delivery)
 *   rule home/#         filter sensors/#       → disjoint (refused)
 */
export type FilterRelation = 'covers' | 'overlaps' | 'disjoint';

const isWild = (level: string | undefined) => level === '+' || level === '#';

export function filterRelation(rule: string, filter: string): FilterRelation {
  if (rule === filter) return 'covers';
  const r = rule.split('/');
  const f = filter.split('/');
  // Leading wildcards never match topics starting with "$" [MQTT-4.7.2-1]: a rule like "#"
  // says nothing about $SYS/..., and a filter like "+/x" can match no $-topic.
  const rDollar = r[0]!.startsWith('$');
  const fDollar = f[0]!.startsWith('$');
  if ((fDollar && isWild(r[0])) || (rDollar && isWild(f[0]))) return 'disjoint';
  let covers = true;
  for (let i = 0; ; i++) {
    const rl = r[i];
    const fl = f[i];
    if (rl === '#') return covers ? 'covers' : 'overlaps'; // "#" also matches the parent level [MQTT-4.7.1-2]
    if (fl === '#') {
      // The filter matches everything from here down (the parent level included), the
      // rule only what its remaining plain or "+" levels describe: some, not all.
      return 'overlaps';
    }
    if (rl === undefined && fl === undefined) return covers ? 'covers' : 'overlaps';
    if (rl === undefined || fl === undefined) return 'disjoint'; // one is longer and not "#"
    if (rl === '+') continue;
    if (fl === '+') {
      covers = false; // the filter matches levels the literal rule level does not
      continue;
    }
    if (rl !== fl) return 'disjoint';
  }
}

