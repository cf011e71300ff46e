/**
 * Subscriptions indexed by topic level, so a publish visits only the branches that can
 * match it: the exact level, `+`, and `#`. Shared subscriptions ($share/group/filter,
 * MQTT 5 §4.8.2) live at their inner filter's node, one group per name, and each
 * publish goes to one member of each matching group.
 */
import type { Message, QoS } from '../core/message.js';
import type { StoredSubscription } from '../core/persistence.js';
import type { ReadGuard } from './read-guard.js';

/** Something that receives routed messages: an MQTT session or an in-process bus subscriber. */
export interface Subscriber {
  readonly key: string;
  /** Compared with the publisher's origin for No Local [MQTT-3.8.3-3]: the client id for MQTT sessions, kind and id for bus subscribers (broker.ts originKey). */
  readonly originId: string;
  readonly isOnline: boolean;
  /** Scratch field for the router: id of the last publish that matched this subscriber. */
  routeMark: number;
  deliver(msg: Message, qos: QoS, retainFlag: boolean, subIds: readonly number[] | undefined): void;
}

/** A subscription in the tree: its options as subscribed (and as a persistent session stores them), and who gets the messages. */
export interface SubscriptionEntry extends StoredSubscription {
  subscriber: Subscriber;
  group: string | undefined;
  /** Set when the ACL grants this filter only in part: each message is checked at delivery. */
  readGuard?: ReadGuard | undefined;
}

interface SharedGroup {
  members: SubscriptionEntry[];
  next: number;
}

class TrieNode {
  children: Map<string, TrieNode> | undefined;
  subs: Map<string, SubscriptionEntry> | undefined;
  groups: Map<string, SharedGroup> | undefined;

  isEmpty(): boolean {
    return (
      (this.children === undefined || this.children.size === 0) &&
      (this.subs === undefined || this.subs.size === 0) &&
      (this.groups === undefined || this.groups.size === 0)
    );
  }
}

export class SubscriptionTree {
  private readonly root = new TrieNode();
  private count = 0;
  /** The topic match() is walking for (shared groups pick a member that may read it). */
  private matching = '';

  get size(): number {
    return this.count;
  }

  /** Adds or replaces; returns true when the subscription is new [MQTT-3.8.4-3]. */
  add(innerFilter: string, entry: SubscriptionEntry): boolean {
    let node = this.root;
    for (const level of innerFilter.split('/')) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (next === undefined) {
        next = new TrieNode();
        node.children.set(level, next);
      }
      node = next;
    }
    if (entry.group !== undefined) {
      node.groups ??= new Map();
      let g = node.groups.get(entry.group);
      if (g === undefined) {
        g = { members: [], next: 0 };
        node.groups.set(entry.group, g);
      }
      const i = g.members.findIndex((m) => m.subscriber.key === entry.subscriber.key);
      if (i >= 0) {
        g.members[i] = entry;
        return false;
      }
      g.members.push(entry);
      this.count++;
      return true;
    }
    node.subs ??= new Map();
    const existed = node.subs.has(entry.subscriber.key);
    node.subs.set(entry.subscriber.key, entry);
    if (!existed) this.count++;
    return !existed;
  }

  /** Removes one subscriber's subscription; returns true when it existed. */
  remove(innerFilter: string, subscriberKey: string, group: string | undefined): boolean {
    const path: TrieNode[] = [this.root];
    const levels = innerFilter.split('/');
    let node: TrieNode | undefined = this.root;
    for (const level of levels) {
      node = node.children?.get(level);
      if (node === undefined) return false;
      path.push(node);
    }
    let removed = false;
    if (group !== undefined) {
      const g = node.groups?.get(group);
      if (g !== undefined) {
        const i = g.members.findIndex((m) => m.subscriber.key === subscriberKey);
        if (i >= 0) {
          g.members.splice(i, 1);
          removed = true;
          if (g.members.length === 0) node.groups!.delete(group);
        }
      }
    } else {
      removed = node.subs?.delete(subscriberKey) ?? false;
    }
    if (!removed) return false;
    this.count--;
    // Prune empty branches so churn of unique topics does not leak nodes.
    for (let i = path.length - 1; i > 0; i--) {
      if (!path[i]!.isEmpty()) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  /** One member of the shared subscription `group` on `innerFilter` (round robin, connected ones first, one that may read `topic`). */
  pickShared(innerFilter: string, group: string, topic: string): SubscriptionEntry | undefined {
    let node: TrieNode | undefined = this.root;
    for (const level of innerFilter.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    const g = node.groups?.get(group);
    return g === undefined ? undefined : pickMember(g, topic);
  }

  /**
   * Appends to `out` every subscription matching `topic`. Leading `+`/`#` do not match
   * topics beginning with `$` [MQTT-4.7.2-1].
   */
  match(topic: string, out: SubscriptionEntry[]): SubscriptionEntry[] {
    this.matching = topic;
    const levels = topic.split('/');
    const dollar = topic.charCodeAt(0) === 36;
    this.walk(this.root, levels, 0, dollar, out);
    return out;
  }

  private walk(node: TrieNode, levels: string[], depth: number, dollar: boolean, visit: SubscriptionEntry[]): void {
    const children = node.children;
    if (children === undefined) return;
    const wildOk = !(dollar && depth === 0);
    if (wildOk) {
      // `#` matches this level and everything below, including the parent itself [MQTT-4.7.1-2].
      const hash = children.get('#');
      if (hash !== undefined) this.emit(hash, visit);
    }
    if (depth === levels.length) return;
    const exact = children.get(levels[depth]!);
    if (exact !== undefined) {
      if (depth + 1 === levels.length) this.emit(exact, visit);
      this.walk(exact, levels, depth + 1, dollar, visit);
    }
    if (wildOk) {
      const plus = children.get('+');
      if (plus !== undefined) {
        if (depth + 1 === levels.length) this.emit(plus, visit);
        this.walk(plus, levels, depth + 1, dollar, visit);
      }
    }
  }

  private emit(node: TrieNode, out: SubscriptionEntry[]): void {
    if (node.subs !== undefined) for (const e of node.subs.values()) out.push(e);
    if (node.groups !== undefined) {
      for (const g of node.groups.values()) {
        const pick = pickMember(g, this.matching);
        if (pick !== undefined) out.push(pick);
      }
    }
  }
}

/**
 * Round robin over the group, preferring members that are connected. With `topic`, a member
 * the ACL lets read only part of the filter is passed over for one that may read the topic:
 * the group gets the message if any member may have it.
 */
function pickMember(g: SharedGroup, topic?: string): SubscriptionEntry | undefined {
  const n = g.members.length;
  if (n === 0) return undefined;
  let offline = -1;
  for (let i = 0; i < n; i++) {
    const idx = (g.next + i) % n;
    const m = g.members[idx]!;
    if (topic !== undefined && m.readGuard !== undefined && !m.readGuard.canRead(topic)) continue;
    if (m.subscriber.isOnline) {
      g.next = (idx + 1) % n;
      return m;
    }
    if (offline < 0) offline = idx;
  }
  const idx = offline >= 0 ? offline : g.next % n;
  g.next = (idx + 1) % n;
  return g.members[idx]!;
}
