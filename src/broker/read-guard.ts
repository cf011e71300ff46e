/**
 * Read access checked at delivery. A subscription whose filter the ACL grants only in part
 * (rule `sensors/a/#`, filter `sensors/#`) is accepted, and each message it matches is
 * checked against the subscriber's rules here, with a small bounded cache per subscriber.
 * Subscriptions the rules cover entirely carry no guard and cost nothing per message.
 */
import type { Grants } from '../auth/acl.js';
import { parseSharedFilter } from '../core/topic.js';
import type { SubscriptionEntry } from './subscription-tree.js';

const CACHE_SIZE = 256;

export class ReadGuard {
  private readonly cache = new Map<string, boolean>();

  constructor(readonly grants: Grants) {}

  canRead(topic: string): boolean {
    let ok = this.cache.get(topic);
    if (ok !== undefined) return ok;
    ok = this.grants.canRead(topic);
    // A subscriber that sees many distinct topics starts over rather than growing.
    if (this.cache.size >= CACHE_SIZE) this.cache.clear();
    this.cache.set(topic, ok);
    return ok;
  }
}

/** The filter the ACL is asked about: a shared subscription's inner filter (MQTT 5 §4.8.2). */
export function aclFilter(filter: string): string {
  const shared = parseSharedFilter(filter);
  return shared !== null && typeof shared !== 'string' ? shared.filter : filter;
}

/**
 * Sets each subscription's guard from (new) grants: none when the rules cover its filter,
 * the subscriber's guard otherwise (which refuses every message when nothing is granted).
 * Used when a client with a persistent session reconnects and when the ACL is reloaded.
 */
export function applyReadGrants(entries: Iterable<SubscriptionEntry>, grants: Grants): ReadGuard | undefined {
  if (grants.unrestricted) {
    for (const e of entries) e.readGuard = undefined;
    return undefined;
  }
  const guard = new ReadGuard(grants);
  for (const e of entries) e.readGuard = grants.readAccess(aclFilter(e.filter)) === 'all' ? undefined : guard;
  return guard;
}
