/** Counts by key (drops by reason, violations by outcome): a Map that knows how to add. */
export class Tally<K> extends Map<K, number> {
  add(key: K, n = 1): void {
    this.set(key, (this.get(key) ?? 0) + n);
  }

  count(key: K): number {
    return this.get(key) ?? 0;
  }
}
